/* Tests of the Jinja2 chat-template interpreter (src/tokenizer/jinja*.c):
 * the shared tokenizers' chat templates against their golden renders,
 * one case per language feature, error messages with their positions, the
 * limits that stop hostile templates, and malformed input.
 *
 * The expected outputs of the feature cases follow Jinja2 3.1 as
 * transformers configures it (trim_blocks, lstrip_blocks, loop controls,
 * json.dumps as tojson), and were checked against it. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_util.h"
#include "tokenizer/jinja.h"

static int checks = 0;

static json_t *load_context(const char *json)
{
    if (json == NULL)
        return NULL;
    json_error_t err;
    json_t *ctx = json_loads(json, 0, &err);
    if (ctx == NULL)
        fprintf(stderr, "bad test context %s: %s\n", json, err.text);
    return ctx;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void check_render(const char *tpl, const char *ctx_json, const char *want)
{
    json_t *ctx = load_context(ctx_json);
    char *out = NULL;
    ogi_status st = jinja_render(tpl, ctx, &out);
    checks++;
    TEST_CHECK(st == OGI_OK && out != NULL && strcmp(out, want) == 0,
               "template %s\n  want: [%s]\n  got:  [%s] (%s)", tpl, want, out ? out : "",
               st == OGI_OK ? "ok" : ogi_last_error());
    free(out);
    json_decref(ctx);
}

/* Renders expecting failure; the message must hold `where` ("line L,
 * column C") and `what`. */
static void check_error(const char *tpl, const char *ctx_json, const char *where, const char *what)
{
    json_t *ctx = load_context(ctx_json);
    char *out = NULL;
    ogi_status st = jinja_render(tpl, ctx, &out);
    const char *msg = ogi_last_error();
    checks++;
    TEST_CHECK(st == OGI_ERR_INVALID_ARGUMENT && out == NULL && strstr(msg, where) != NULL &&
                   strstr(msg, what) != NULL,
               "template %s: want an error at %s with '%s', got %s: %s", tpl, where, what,
               ogi_status_name(st), st == OGI_OK ? out : msg);
    free(out);
    json_decref(ctx);
}

/* ---- Features, one case each ---- */

typedef struct render_case {
    const char *tpl;
    const char *ctx_json; /* NULL: no variables */
    const char *want;
} render_case;

static const render_case render_cases[] = {
    {"a\n  {% if true %}\n  b\n  {% endif %}\n  c\n", NULL, "a\n  b\n  c"},
    {"a  {%- if true -%}  b  {%- endif -%}  c", NULL, "abc"},
    {"  {# comment #}\nx\n  {#- c -#}  y  {#+ c +#}\n z", NULL, "xy  \n z"},
    {"{% for i in [1,2] %}\n  {{ i }}\n{% endfor %}\n", NULL, "  1\n  2\n"},
    {"{%+ if true %}x{% endif +%}\ny", NULL, "x\ny"},
    {"x  {%+ if true %}\n y{% endif %}", NULL, "x   y"},
    {"\t {% if true %}yes{% endif %}\n\t{{ 1 }}\n  {% if false %}no{% endif %} after", NULL,
     "yes\t1\n after"},
    {"{% raw %}{{ not evaluated }}{% endraw %}\n  {%- raw -%}  {% x %}  {%- endraw -%}  done", NULL,
     "{{ not evaluated }}{% x %}done"},
    {"line1\015\nline2\015{{ 'x' }}\015\n", NULL, "line1\nline2\nx"},
    {"{{ 'a' }}\n\n", NULL, "a\n"},
    {"{{- '  a' -}}  \n  {{ 'b' }}", NULL, "  ab"},
    {"{% if true %}   \n{% endif %}", NULL, "   \n"},
    {" {% if true %} {% endif %} ", NULL, "  "},
    {"  {{ 'v' }}  {% if true %}x{% endif %}", NULL, "  v  x"},
    {"a\n    {%- set x = 1 %}\n    {{- x }}", NULL, "a1"},
    {"{% for x in [1,2,3] -%}\n{{ x }}\n{%- endfor %}", NULL, "123"},
    {"{{ 1.0 }} {{ 1e3 }} {{ 1.5e-7 }} {{ 123456789012345678.0 }} {{ 0.1 }} {{ -0.0 }} {{ 2**62 }} "
     "{{ 1_000 }} {{ 0x1F }}",
     NULL, "1.0 1000.0 1.5e-07 1.2345678901234568e+17 0.1 -0.0 4611686018427387904 1000 31"},
    {"{{ true }} {{ True }} {{ none }} {{ None }} {{ false }}", NULL, "True True None None False"},
    {"{{ [1, 'a', \"it's\", 'say \"hi\"', none, 1.5, {'k': [true, ('t',)]}] }}", NULL,
     "[1, 'a', \"it's\", 'say \"hi\"', None, 1.5, {'k': [True, ('t',)]}]"},
    {"{{ {'a': 1, 2: 'b', none: 3} }} {{ (1, 2) }} {{ () }} {{ [] }} {{ {} }}", NULL,
     "{'a': 1, 2: 'b', None: 3} (1, 2) () [] {}"},
    {"{{ 'tab\\tnl\\nq\\'bs\\\\ \\x41 \\u00e9 \\U0001F600 \\101 \\d' }}", NULL,
     "tab\tnl\nq'bs\\ A \303\251 \360\237\230\200 A \\d"},
    {"{{ ['\\x00\\x7f\\u200b\\u00a0\303\251\360\237\230\200\\n'] }}", NULL,
     "['\\x00\\x7f\\u200b\\xa0\303\251\360\237\230\200\\n']"},
    {"{{ 'a' 'b' \"c\" }}", NULL, "abc"},
    {"{{ x }}", "{\"x\": [1, \"two\", {\"three\": 3.0}, null, true]}",
     "[1, 'two', {'three': 3.0}, None, True]"},
    {"{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }} "
     "{{ 7.5 // 2 }} {{ -7.5 // 2 }} {{ 7 % 2.5 }} {{ -7 % 2.5 }} {{ 'ab' * 3 }} {{ 3 * 'ab' }} {{ "
     "[1] * 2 }} {{ 2 ** 3 ** 2 }}",
     NULL, "3 -4 2 -2 3.5 1024 0.5 3.0 -4.0 2.0 0.5 ababab ababab [1, 1] 64"},
    {"{{ 1 + 2 * 3 - 4 / 2 }} {{ (1 + 2) * 3 }} {{ -2 ** 2 }} {{ - 3 }} {{ +3 }} {{ true + 1 }} {{ "
     "1 + 1.5 }} {{ 10 - 0.5 }}",
     NULL, "5.0 9 4 -3 3 2 2.5 9.5"},
    {"{{ 'a' ~ 1 ~ none ~ true ~ [1] ~ undefined_x }}", NULL, "a1NoneTrue[1]"},
    {"{{ [1,2] + [3] }} {{ (1,) + (2,) }} {{ 'x' + 'y' }}", NULL, "[1, 2, 3] (1, 2) xy"},
    {"{{ 5 % 3 }} {{ '%s and %d' % ('a', 3) }} {{ '%05.1f|%-4s|%x' % (3.14159, 'ab', 255) }} {{ "
     "'%(a)s' % {'a': 1} }}",
     NULL, "2 a and 3 003.1|ab  |ff 1"},
    {"{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ [1,2] < [1,3] }} {{ 'a' != "
     "'a' }} {{ none == none }} {{ 1 == true }}",
     NULL, "True False True True True False True True"},
    {"{{ 'a' in 'cat' }} {{ 'z' not in 'cat' }} {{ 2 in [1,2] }} {{ 'k' in {'k': 1} }} {{ 3 in (1, "
     "2) }} {{ 'x' in undefined_y }}",
     NULL, "True True True True False False"},
    {"{{ 0 or 'z' }} {{ 'x' and 'y' }} {{ none or [] }} {{ not 0 }} {{ not [] }} {{ not 'a' }} {{ "
     "'' and 1 }}",
     NULL, "z y [] True True False "},
    {"{{ 'yes' if 1 else 'no' }} {{ 'yes' if 0 else 'no' }} [{{ 'y' if false }}] {{ 1 if 0 else 2 "
     "if 0 else 3 }}",
     NULL, "yes no [] 3"},
    {"[{{ foo }}] {{ foo is defined }} {{ foo is undefined }} {{ foo|default('d') }} {{ foo|length "
     "}} {{ foo|list }} {{ foo|string }}",
     NULL, "[] False True d 0 [] "},
    {"{{ x.y }}|{{ x['y'] }}|{{ x.y is defined }}", "{\"x\": {}}", "||False"},
    {"{% for a in foo %}x{% else %}empty{% endfor %}", NULL, "empty"},
    {"{{ ''|default('d') }} {{ ''|default('d', true) }} {{ none|default('d') }} {{ none|d('d', "
     "boolean=true) }} {{ 0|default(5, true) }}",
     NULL, " d None d 5"},
    {"{{ [1,2][5] }}|{{ 'abc'[1] }}|{{ 'abc'[-1] }}|{{ {'a':1}['b'] }}|{{ [1,2][-1] }}|{{ x[0] }}",
     "{\"x\": [[9]]}", "|b|c||2|[9]"},
    {"{{ none.x }}|{{ (1).x }}", NULL, "|"},
    {"{{ d['items'] }}", "{\"d\": {\"items\": 5}}", "5"},
    {"{% for k, v in d|items %}{{ k }}={{ v }};{% endfor %}|{% for k in d %}{{ k }}{% endfor %}",
     "{\"d\": {\"a\": 1, \"b\": 2}}", "a=1;b=2;|ab"},
    {"{{ s.startswith('ab') }} {{ s.endswith(('x', 'yz')) }} {{ s.startswith('b', 1) }} {{ "
     "s.find('c') }} {{ s.find('q') }} {{ s.rfind('b') }} {{ s.count('b') }} {{ s.upper() }} {{ "
     "s.replace('b', 'B', 1) }} {{ s.index('c') }}",
     "{\"s\": \"abcbxyz\"}", "True True True 2 -1 3 2 ABCBXYZ aBcbxyz 2"},
    {"{{ ' a b  c '.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a,b,c'.split(',', 1) }} {{ "
     "'a,b,c'.rsplit(',', 1) }} {{ '  a b  c  '.split(None, 1) }} {{ '  a b  c  '.rsplit(None, 1) "
     "}} {{ ''.split() }} {{ ''.split(',') }}",
     NULL,
     "['a', 'b', 'c'] ['a', 'b', '', 'c'] ['a', 'b,c'] ['a,b', 'c'] ['a', 'b  c  '] ['  a b', 'c'] "
     "[] ['']"},
    {"{{ '  xx  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ '\\n\\nhi\\n'.lstrip('\\n') }}|{{ "
     "'hi\\n\\n'.rstrip() }}|{{ 'ab'.rstrip('') }}",
     NULL, "xx|hi|hi\n|hi|ab"},
    {"{{ 'hello world'.title() }} {{ 'HELLO'.lower() }} {{ 'hello'.capitalize() }} {{ "
     "'Hello'.swapcase() }} {{ '\303\237 stra\303\237e \303\211COLE'.upper() }} {{ "
     "'\303\211COLE'.lower() }}",
     NULL, "Hello World hello Hello hELLO SS STRASSE \303\211COLE \303\251cole"},
    {"{{ ','.join(['a','b']) }} {{ '-'.join('xyz') }} {{ 'a{}b{}'.format(1, 'x') }} {{ "
     "'{0}{0}{name}'.format(7, name='n') }} {{ '{{}}'.format() }}",
     NULL, "a,b x-y-z a1bx 77n {}"},
    {"{{ '123'.isdigit() }} {{ 'abc'.isalpha() }} {{ ''.isdigit() }} {{ ' \\t'.isspace() }} {{ "
     "'ABC'.isupper() }} {{ 'abc1'.islower() }} {{ 'a1'.isalnum() }}",
     NULL, "True True False True True True True"},
    {"{{ '42'.zfill(5) }} {{ '-42'.zfill(5) }} {{ 'ab'.center(6, '*') }} {{ 'ab'.ljust(4) }}| {{ "
     "'ab'.rjust(4, '.') }} {{ 'a=b=c'.partition('=') }} {{ 'a=b=c'.rpartition('=') }}",
     NULL, "00042 -0042 **ab** ab  | ..ab ('a', '=', 'b=c') ('a=b', '=', 'c')"},
    {"{{ 'a\\nb\\r\\nc\\n'.splitlines() }} {{ 'x\\ny'.splitlines(true) }} {{ "
     "'pre_x'.removeprefix('pre_') }}",
     NULL, "['a', 'b', 'c'] ['x\\n', 'y'] x"},
    {"{{ [1,2,2].count(2) }} {{ [1,2,3].index(2) }} {{ (1,2).index(2) }}", NULL, "2 1 1"},
    {"{{ 'abc'.nosuch }}|", NULL, "|"},
    {"{{ s[1:] }}|{{ s[:-1] }}|{{ s[::-1] }}|{{ s[::2] }}|{{ s[-2:] }}|{{ s[5:1:-2] }}|{{ s[100:] "
     "}}|{{ s[-100:2] }}",
     "{\"s\": \"h\303\251llo w\303\266rld\"}",
     "\303\251llo w\303\266rld|h\303\251llo w\303\266rl|dlr\303\266w oll\303\251h|hlowrd|ld| "
     "l||h\303\251"},
    {"{{ l[1:3] }}|{{ l[::-1] }}|{{ l[:0] }}|{{ l[::-2] }}|{{ l[-1::-1] }}|{{ (1,2,3)[1:] }}",
     "{\"l\": [0, 1, 2, 3, 4]}", "[1, 2]|[4, 3, 2, 1, 0]|[]|[4, 2, 0]|[4, 3, 2, 1, 0]|(2, 3)"},
    {"{% for m in messages[::-1] %}{{ m }}{% endfor %}", "{\"messages\": [1, 2, 3]}", "321"},
    {"{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 "
     "}}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}",
     NULL, "1032TrueFalse3|2121FalseFalse3|3210FalseTrue3|"},
    {"{% for x in [1,2,3] %}{{ loop.previtem }}-{{ loop.nextitem }};{% endfor %}", NULL,
     "-2;1-3;2-;"},
    {"{% for x in [1,2,3,4,5] if x is odd %}{{ x }}:{{ loop.index }}/{{ loop.length }}{{ ',' if "
     "not loop.last }}{% endfor %}",
     NULL, "1:1/3,3:2/3,5:3/3"},
    {"{% for x in [] %}x{% else %}none{% endfor %}|{% for x in [1, 2] if x > 5 %}x{% else "
     "%}filtered{% endfor %}",
     NULL, "none|filtered"},
    {"{% for x in [1,2,3] %}{% if x == 2 %}{% continue %}{% endif %}{{ x }}{% endfor %}|{% for x "
     "in [1,2,3] %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}",
     NULL, "13|1"},
    {"{% for a, b in [[1, 2], (3, 4)] %}{{ a + b }},{% endfor %}", NULL, "3,7,"},
    {"{% for i in range(3) %}{% for j in range(i) %}{{ loop.depth }}{{ i }}{{ j }} {% endfor %}{{ "
     "loop.depth0 }}|{% endfor %}",
     NULL, "0|110 0|120 121 0|"},
    {"{% for x in [1,2,3] %}{{ loop.cycle('a', 'b') }}{% endfor %}|{% for x in [1,1,2] %}{{ "
     "loop.changed(x) }}{% endfor %}",
     NULL, "aba|TrueFalseTrue"},
    {"{{ range(5)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }} {{ range(0)|list "
     "}}",
     NULL, "[0, 1, 2, 3, 4] [1, 4, 7] [5, 3, 1] []"},
    {"{% set x = 5 %}{% for i in [1,2] %}{% if i == 1 %}{% set x = 9 %}{% endif %}[{{ x }}]{% "
     "endfor %}{{ x }}",
     NULL, "[9][5]5"},
    {"{% for i in [1, 2] %}{% set y = i %}{% endfor %}[{{ y }}][{{ i }}]", NULL, "[][]"},
    {"{% set i = 'outer' %}{% for i in [1] %}{% endfor %}{{ i }}", NULL, "outer"},
    {"{% for i in [1,2] %}{% for j in [3] %}{{ loop.index }}{% endfor %}{{ loop.index }}{% endfor "
     "%}",
     NULL, "1112"},
    {"{% for x in {'b': 1, 'a': 2} %}{{ x }}{% endfor %}", NULL, "ba"},
    {"{% for c in 'h\303\251llo' %}{{ c }}.{% endfor %}", NULL, "h.\303\251.l.l.o."},
    {"{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = 1, 2 %}{{ c }}", NULL, "12(1, 2)"},
    {"{% set ns = namespace(a=1, b='x') %}{% set ns.a = ns.a + 1 %}{{ ns.a }}{{ ns.b }}{{ ns.c "
     "}}|{{ ns }}",
     NULL, "2x|<Namespace {'a': 2, 'b': 'x'}>"},
    {"{% set ns = namespace(found=false) %}{% for x in [1,2,3] %}{% if x == 2 %}{% set ns.found = "
     "true %}{% endif %}{% endfor %}{{ ns.found }}",
     NULL, "True"},
    {"{% set x %}Hello {{ 'World' }}{% endset %}[{{ x }}]{% set y | upper %}abc{% endset %}{{ y }}",
     NULL, "[Hello World]ABC"},
    {"{% set d = dict(a=1, b=2) %}{{ d }}{{ dict(d, c=3) }}", NULL,
     "{'a': 1, 'b': 2}{'a': 1, 'b': 2, 'c': 3}"},
    {"{% set ns = namespace({'k': 1}) %}{{ ns.k }}", NULL, "1"},
    {"{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]", NULL, "3[]"},
    {"{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ "
     "greet('Bob') }} {{ greet('Al', greeting='Hi') }} {{ greet(name='X', greeting='Yo') }}",
     NULL, "Hello, Bob! Hi, Al! Yo, X!"},
    {"{% macro m(a, b=a ~ '!') %}{{ a }}{{ b }}{% endmacro %}{{ m('x') }}|{{ m() }}|{{ m }}", NULL,
     "xx!|!|<Macro 'm'>"},
    {"{% macro rec(n) %}{% if n > 0 %}{{ n }}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(5) }}",
     NULL, "54321"},
    {"{% macro m() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, k=3) }}", NULL,
     "(1, 2){'k': 3}"},
    {"{% macro m() %}{{ x }}{% endmacro %}{% set x = 1 %}{{ m() }}", NULL, "1"},
    {"{% macro render_tool(t) %}{{ t.name|upper }}{% endmacro %}{% for t in tools %}{{ "
     "render_tool(t) }}{% endfor %}",
     "{\"tools\": [{\"name\": \"a\"}, {\"name\": \"b\"}]}", "AB"},
    {"{% filter upper %}abc {{ 'def' }}{% endfilter %}", NULL, "ABC DEF"},
    {"{% generation %}gen {{ 1 }}{% endgeneration %}", NULL, "gen 1"},
    {"{{ 1 is number }} {{ true is number }} {{ 1 is integer }} {{ true is integer }} {{ 1.0 is "
     "float }} {{ 'a' is string }} {{ {} is mapping }} {{ [] is iterable }} {{ 'a' is iterable }} "
     "{{ {} is sequence }} {{ none is none }} {{ true is boolean }} {{ 1 is boolean }}",
     NULL, "True True True False True True True True True True True True False"},
    {"{{ true is true }} {{ 1 is true }} {{ false is false }} {{ 4 is even }} {{ 3 is odd }} {{ 9 "
     "is divisibleby 3 }} {{ 9 is divisibleby(4) }} {{ 1 is eq 1 }} {{ 1 is equalto 2 }} {{ 2 is "
     "gt 1 }} {{ 2 is lessthan 1 }} {{ 2 is in [1,2] }} {{ 'abc' is lower }} {{ 'ABC' is upper }} "
     "{{ x is callable }} {{ 'upper' is filter }} {{ 'odd' is test }} {{ 1 is ne 1 }} {{ 1 is ge 1 "
     "}} {{ 1 is le 0 }}",
     "{\"x\": 1}",
     "True False True True True True False True False True False True True True False True True "
     "False True False"},
    {"{{ x is sameas x }} {{ none is sameas none }} {{ [] is sameas [] }}", "{\"x\": [1]}",
     "True True False"},
    {"{{ 3 is not none }} {{ none is not none }} {{ not x is defined }}", NULL, "True False True"},
    {"{{ '  hi  '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ 'Hello World'|lower }}|{{ 'hello "
     "world'|upper }}|{{ 'hello wORLD-foo (bar) [baz]'|title }}|{{ 'hELLO'|capitalize }}",
     NULL, "hi|hi|hello world|HELLO WORLD|Hello World-Foo (Bar) [Baz]|Hello"},
    {"{{ 'hello'|replace('l', 'L') }} {{ 'hello'|replace('l', 'L', 1) }} {{ 'ab'|replace('', '-') "
     "}}",
     NULL, "heLLo heLlo -a-b-"},
    {"{{ [1,2,3]|join(', ') }} {{ ['a','b']|join }} {{ users|join(',', attribute='name') }}",
     "{\"users\": [{\"name\": \"a\"}, {\"name\": \"b\"}]}", "1, 2, 3 ab a,b"},
    {"{{ [3,1,2]|sort }} {{ [3,1,2]|sort(reverse=true) }} {{ ['b','A','c']|sort }} {{ "
     "['b','A','c']|sort(case_sensitive=true) }} {{ "
     "users|sort(attribute='age')|map(attribute='name')|list }}",
     "{\"users\": [{\"name\": \"a\", \"age\": 30}, {\"name\": \"b\", \"age\": 20}, {\"name\": "
     "\"c\", \"age\": 30}]}",
     "[1, 2, 3] [3, 2, 1] ['A', 'b', 'c'] ['A', 'b', 'c'] ['b', 'a', 'c']"},
    {"{{ [1,2,2,'a','A']|unique|list }} {{ [3,1,2]|min }} {{ [3,1,2]|max }} {{ ['b','A']|max }} {{ "
     "[]|max }} {{ [1,2,3]|sum }} {{ [1.5, 2]|sum }} {{ users|sum(attribute='age') }}",
     "{\"users\": [{\"age\": 1}, {\"age\": 2}]}", "[1, 2, 'a'] 1 3 b  6 3.5 3"},
    {"{{ [1,2,3]|first }} {{ [1,2,3]|last }} {{ 'abc'|first }} {{ []|first }} {{ [1,2,3]|length }} "
     "{{ 'h\303\251llo'|length }} {{ {'a':1}|count }} {{ [3,1]|reverse|list }} {{ 'abc'|reverse }}",
     NULL, "1 3 a  3 5 1 [1, 3] cba"},
    {"{{ messages|selectattr('role', 'equalto', 'user')|list|length }} {{ "
     "messages|rejectattr('role', 'eq', 'user')|map(attribute='content')|list }} {{ "
     "messages|selectattr('tool_calls')|list }} {{ messages|selectattr('tool_calls', "
     "'defined')|list|length }}",
     "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", "
     "\"content\": \"b\", \"tool_calls\": [1]}]}",
     "1 ['b'] [{'role': 'assistant', 'content': 'b', 'tool_calls': [1]}] 1"},
    {"{{ [1,2,3,4]|select('odd')|list }} {{ [1,2,3,4]|reject('odd')|list }} {{ "
     "[0,1,none,'']|select|list }} {{ [1,5,9]|select('gt', 4)|list }} {{ "
     "['a','B']|map('upper')|list }} {{ [1.5, 2.5]|map('round')|list }} {{ [{'a': {'b': "
     "1}}]|map(attribute='a.b')|list }} {{ [{}]|map(attribute='x', default='D')|list }}",
     NULL, "[1, 3] [2, 4] [1] [5, 9] ['A', 'B'] [2.0, 2.0] [1] ['D']"},
    {"{{ 3.7|int }} {{ '42'|int }} {{ '4.9'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ '0x1f'|int(0, "
     "16) }} {{ ' 12 '|int }} {{ '3.5'|float }} {{ 'x'|float }} {{ 2|float }} {{ '1e3'|float }} {{ "
     "-3|abs }} {{ -2.5|abs }} {{ 3.14159|round(2) }} {{ 2.5|round }} {{ 3.5|round }} {{ "
     "2.675|round(2) }} {{ 3|round }} {{ 3.14|round(1, 'ceil') }} {{ 3.19|round(1, 'floor') }}",
     NULL, "3 42 4 0 7 31 12 3.5 0.0 2.0 1000.0 3 2.5 3.14 2.0 4.0 2.67 3 3.2 3.1"},
    {"{{ x|tojson }}|{{ x|tojson(indent=2) }}|{{ x|tojson(separators=(',', ':')) }}|{{ "
     "x|tojson(sort_keys=true) }}|{{ x|tojson(ensure_ascii=true) }}",
     "{\"x\": {\"b\": [1, 2.5, \"\303\251\\n\\u0001\\\"\\\\<>&'\177\360\237\230\200\"], \"a\": "
     "null, \"c\": true, \"d\": {}, \"e\": [], \"f\": 1e+100, \"g\": -0.0}}",
     "{\"b\": [1, 2.5, \"\303\251\\n\\u0001\\\"\\\\<>&'\177\360\237\230\200\"], \"a\": null, "
     "\"c\": true, \"d\": {}, \"e\": [], \"f\": 1e+100, \"g\": -0.0}|{\n  \"b\": [\n    1,\n    "
     "2.5,\n    \"\303\251\\n\\u0001\\\"\\\\<>&'\177\360\237\230\200\"\n  ],\n  \"a\": null,\n  "
     "\"c\": true,\n  \"d\": {},\n  \"e\": [],\n  \"f\": 1e+100,\n  \"g\": "
     "-0.0\n}|{\"b\":[1,2.5,\"\303\251\\n\\u0001\\\"\\\\<>&'\177\360\237\230\200\"],\"a\":null,"
     "\"c\":true,\"d\":{},\"e\":[],\"f\":1e+100,\"g\":-0.0}|{\"a\": null, \"b\": [1, 2.5, "
     "\"\303\251\\n\\u0001\\\"\\\\<>&'\177\360\237\230\200\"], \"c\": true, \"d\": {}, \"e\": [], "
     "\"f\": 1e+100, \"g\": -0.0}|{\"b\": [1, 2.5, "
     "\"\\u00e9\\n\\u0001\\\"\\\\<>&'\\u007f\\ud83d\\ude00\"], \"a\": null, \"c\": true, \"d\": "
     "{}, \"e\": [], \"f\": 1e+100, \"g\": -0.0}"},
    {"{{ 'x'|tojson }}{{ 3.0|tojson }}{{ (1,2)|tojson }}{{ none|tojson }}{{ x|tojson(indent='\\t') "
     "}}",
     "{\"x\": [1, {\"a\": [2]}]}",
     "\"x\"3.0[1, 2]null[\n\t1,\n\t{\n\t\t\"a\": [\n\t\t\t2\n\t\t]\n\t}\n]"},
    {"{{ {1: 'a', true: 'b', none: 'c', 1.5: 'd'}|tojson }}", NULL,
     "{\"1\": \"b\", \"null\": \"c\", \"1.5\": \"d\"}"},
    {"{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent(2, "
     "blank=true) }}|{{ 'a\\nb'|indent('> ') }}|{{ 'x\\n'|indent(3) }}",
     NULL, "a\n    b\n\n    c|  a\n  b|a\n  \n  b|a\n> b|x\n"},
    {"{{ 'hello big world'|wordcount }} {{ '<a href=\"x\">&'|e }} {{ '<b>'|escape }} {{ '<x>'|safe "
     "}} {{ 1|string }} {{ none|string }} {{ [1]|string }} {{ 'ab'|center(6) }}|",
     NULL, "3 &lt;a href=&#34;x&#34;&gt;&amp; &lt;b&gt; <x> 1 None [1]   ab  |"},
    {"{{ {'b': 2, 'a': 1}|dictsort }} {{ {'b': 1, 'a': 2}|dictsort(by='value') }} {{ "
     "[1,2,3,4,5]|batch(2)|list }} {{ [1,2,3]|batch(2, 'x')|list }}",
     NULL, "[('a', 1), ('b', 2)] [('b', 1), ('a', 2)] [[1, 2], [3, 4], [5]] [[1, 2], [3, 'x']]"},
    {"{{ '%s-%s'|format('a', 'b') }} {{ users|map(attribute='name')|join('|') }} {{ {'a': "
     "1}|items|list }} {{ 'x'|attr('upper') is callable }}",
     "{\"users\": [{\"name\": \"n1\"}]}", "a-b n1 [('a', 1)] True"},
    {"{{ ['b', 'a']|sort|first }} {{ [[2, 'b'], [1, 'a']]|sort }} {{ "
     "users|sort(attribute='a,b')|map(attribute='b')|list }}",
     "{\"users\": [{\"a\": 2, \"b\": 1}, {\"a\": 1, \"b\": 3}, {\"a\": 1, \"b\": 2}]}",
     "a [[1, 'a'], [2, 'b']] [2, 3, 1]"},
    {"{{ x|selectattr('a', 'in', [1, 2])|list }}", "{\"x\": [{\"a\": 1}, {\"a\": 3}]}",
     "[{'a': 1}]"},
    {"{{ a.0 }} {{ a.1.0 }}", "{\"a\": [5, [6]]}", "5 6"},
    {"{% if a %}A{% elif b %}B{% elif c %}C{% else %}D{% endif %}",
     "{\"a\": false, \"b\": 0, \"c\": [1]}", "C"},
    {"{% if true %}x{% else %}y{% endif %}{% if false %}x{% elif false %}y{% endif %}", NULL, "x"},
    {"{{ messages[0].content if messages else 'none' }}", "{\"messages\": []}", "none"},
    {"{{ a.b['c'].d }}", "{\"a\": {\"b\": {\"c\": {\"d\": \"deep\"}}}}", "deep"},
    {"{{ [1,2,3]|length - 1 }} {{ messages|length * 2 }}", "{\"messages\": [1, 2]}", "2 4"},
    {"{% for x in [1,2] %}{{ x }}{% endfor %}{{ loop }}", NULL, "12"},
    {"{{ (loop is defined) }}", NULL, "False"},
    {"{% set msgs = messages | selectattr('role', 'ne', 'system') | list %}{{ msgs|length }}",
     "{\"messages\": [{\"role\": \"system\"}, {\"role\": \"user\"}]}", "1"},
    {"{{ 'a' * -1 }}|{{ [1] * 0 }}|{{ 0.1 * 3 }}|{{ 1e308 * 10 }}|{{ -1e308 * 10 }}|{{ 10 ** 18 }}",
     NULL, "|[]|0.30000000000000004|inf|-inf|1000000000000000000"},
    {"{{ (1, 2) == [1, 2] }} {{ {'a': 1} == {'a': 1.0} }} {{ [1, [2]] == [1, [2]] }} {{ 'a' == 1 "
     "}}",
     NULL, "False True True False"},
    {"{% if x %}T{% else %}F{% endif %}", "{\"x\": 0.0}", "F"},
    {"{% if x %}T{% else %}F{% endif %}", "{\"x\": {}}", "F"},
    {"{{ x }}", "{\"x\": 12345678901234}", "12345678901234"},
    {"{{ x }} {{ x * 2 }} {{ x / 3 }}", "{\"x\": 0.1}", "0.1 0.2 0.03333333333333333"},
    {"{{ '\303\234n\303\257c\303\266d\303\251'|upper }} {{ '\307\205'|lower }} {{ "
     "'\357\254\201'|upper }}",
     NULL, "\303\234N\303\217C\303\226D\303\211 \307\206 FI"},
    {"{{ 'a b'|title }} {{ \"they're\"|title }} {{ 'x-y z(w'|title }}", NULL,
     "A B They're X-Y Z(W"},
    {"{{ {'a': {'b': 1}}.a.b }} {{ {'a': 1}['a'] }}", NULL, "1 1"},
    {"{{ 'abc' is string and 'abc'|length > 2 }}", NULL, "True"},
    {"{% set content = m.content.split('</think>')[-1].lstrip('\\n') %}{{ content }}",
     "{\"m\": {\"content\": \"<think>r</think>\\n\\nanswer\"}}", "answer"},
    {"{{ messages[-1]['role'] == 'user' }}", "{\"messages\": [{\"role\": \"user\"}]}", "True"},
    {"{%- for message in messages %}{%- if message['role'] == 'user' %}{{ '[INST] ' + "
     "message['content'] + ' [/INST]' }}{%- elif message['role'] == 'assistant' %}{{ "
     "message['content'] + eos_token }}{%- endif %}{%- endfor %}",
     "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", "
     "\"content\": \"yo\"}], \"eos_token\": \"</s>\"}",
     "[INST] hi [/INST]yo</s>"},
    {"{{ 'x'[5] }}|{{ 'x'['a'] }}", NULL, "|"},
    {"{{ [1,2,3][1:2] }} {{ 'ab'[0:1] }} {{ 'ab'['upper']() }}", NULL, "[2] a AB"},
    {"{{ '{}'.format([1]) }} {{ '{!r}'.format('a') }} {{ '{0[0]}'.format(['z']) }}", NULL,
     "[1] 'a' z"},
    {"{%- macro m(x) -%}\n  [{{ x }}]\n{%- endmacro -%}\n{{ m(1) }}\n{{ m(2) }}", NULL, "[1]\n[2]"},
    {"{{ caller }}", NULL, ""},
    {"{% for x in [1] %}{{ x }}{% endfor %}\n{% if true %}\n    hello\n{% endif %}\n", NULL,
     "1    hello\n"},
    {"{{ 'a\\\nb' }}", NULL, "ab"},
    {"{{ '<a>' + ('b'|safe) }}|{{ ('<b>'|safe) + '<a>' }}|{{ '<a>' ~ ('b'|safe) }}|{{ ('x'|e) + "
     "'&' }}|{{ '<'|e|e }}|{{ '<'|e|forceescape }}|{% macro m() %}<m>{% endmacro %}{{ '<' + m() }}",
     NULL, "&lt;a&gt;b|<b>&lt;a&gt;|<a>b|x&amp;|&lt;|&amp;lt;|<<m>"},
    {"{{ 'a' * 3 is string }} {{ '%s|%5.2f|%-3d|%x' % ('s', 2.5, 7, 255) }} {{ '%(k)s' % {'k': "
     "'v'} }}",
     NULL, " s| 2.50|7  |ff v"},
    {"{% for x in xs %}{{ x.name ~ ('' if loop.last else ', ') }}{% endfor %}",
     "{\"xs\": [{\"name\": \"a\"}, {\"name\": \"b\"}]}", "a, b"},
    {"{{ tools | map('tojson') | join('\\n') }}",
     "{\"tools\": [{\"a\": 1}, {\"b\": [true, null]}]}", "{\"a\": 1}\n{\"b\": [true, null]}"},
    {"{% for m in messages | rejectattr('role', 'equalto', 'tool') | selectattr('tool_calls', "
     "'undefined') %}{{ m.role }};{% endfor %}",
     "{\"messages\": [{\"role\": \"user\"}, {\"role\": \"tool\"}, {\"role\": \"assistant\", "
     "\"tool_calls\": []}, {\"role\": \"assistant\"}]}",
     "user;assistant;"},

};

static void test_features(void)
{
    for (size_t i = 0; i < sizeof(render_cases) / sizeof(render_cases[0]); i++)
        check_render(render_cases[i].tpl, render_cases[i].ctx_json, render_cases[i].want);
}

/* ---- Errors and their positions ---- */

static void test_errors(void)
{
    check_error("{% if %}", NULL, "line 1, column 7", "expected an expression");
    check_error("Hello\n{% for x in y %}\n  {{ x }\n{% endfor %}", NULL, "line 3, column 8",
                "unexpected '}'");
    check_error("{{ 1 |nosuch }}", NULL, "line 1, column 7", "no filter named 'nosuch'");
    check_error("{{ 3 is nosuchtest }}", NULL, "line 1, column 9", "no test named 'nosuchtest'");
    check_error("{% if false %}{{ x|nosuch }}{% endif %}", NULL, "line 1, column 20",
                "no filter named");
    check_error("line1\n  {{ foo.bar }}", NULL, "line 2, column 9", "'foo' is undefined");
    check_error("{{ 'éé' ~ foo() }}", NULL, "line 1, column 14", "'foo' is undefined");
    check_error("{{ x.y.z }}", "{\"x\": {}}", "line 1, column 7",
                "'dict object' has no attribute 'y'");
    check_error("{% endfor %}", NULL, "line 1, column 4", "unknown tag 'endfor'");
    check_error("{% include 'x' %}", NULL, "line 1, column 4", "unknown tag 'include'");
    check_error("ab\n{% for x in [1] %}\n", NULL, "line 2, column 19",
                "expected 'endfor' or 'else' to close the 'for' opened at line 2, column 4");
    check_error("{% generation %}x", NULL, "line 1, column 18", "'endgeneration'");
    check_error("x {# unclosed\n", NULL, "line 1, column 3", "missing end of comment");
    check_error("{{ 'abc }}", NULL, "line 1, column 4", "unterminated string");
    check_error("{% raw %}x", NULL, "line 1, column 1", "missing end of raw");
    check_error("{% break %}", NULL, "line 1, column 4", "'break' outside of a loop");
    check_error("{{ [1].append(2) }}", NULL, "line 1, column 14",
                "access to attribute 'append' of 'list' object is unsafe");
    check_error("{{ 1 / 0 }}", NULL, "line 1, column 6", "division by zero");
    check_error("{{ 'a' + 1 }}", NULL, "line 1, column 8", "can only concatenate str");
    check_error("{{ 1 < 'a' }}", NULL, "line 1, column 4", "'<' not supported");
    check_error("{{ x|tojson }}", NULL, "line 1, column 6", "not JSON serializable");
    check_error("{{ x|length }}", "{\"x\": 5}", "line 1, column 6", "has no len()");
    check_error("{% set x = 1 %}{% set x.y = 1 %}", NULL, "line 1, column 19",
                "cannot assign attribute on non-namespace object");
    check_error("{% for a, b in [[1, 2, 3]] %}{% endfor %}", NULL, "line 1, column 4",
                "too many values to unpack");
    check_error("{% for x in none %}{% endfor %}", NULL, "line 1, column 4", "not iterable");
    check_error("{{ 9223372036854775807 + 1 }}", NULL, "line 1, column 24", "integer overflow");
    check_error("{{ 'abc'.nosuch() }}", NULL, "line 1, column 16",
                "'str object' has no attribute 'nosuch'");
    check_error("{{ 'x' * 100000000 }}", NULL, "line 1, column 8", "exceeds 64 MiB");
    check_error("{{ 'abc' is even }}", NULL, "line 1, column 10", "not all arguments converted");
    check_error("{{ 5|indent }}", NULL, "line 1, column 6", "unsupported operand");
    check_error("{{ x[1:] }}", "{\"x\": 5}", "line 1, column 5",
                "'int' object is not subscriptable");
    check_error("{{ '\\xZZ' }}", NULL, "line 1, column 4", "invalid \\x, \\u or \\U escape");
}

/* raise_exception(msg) fails with the template's own message. */
static void test_raise_exception(void)
{
    check_error("a\nb\n{%- if x -%}{{ raise_exception('bad role: ' ~ x) }}{% endif %}",
                "{\"x\": \"robot\"}", "line 3, column 31", "bad role: robot");
    check_error("{% for m in messages %}{% if m.role not in ['user', 'assistant'] %}"
                "{{ raise_exception('Only user and assistant roles are supported!') }}"
                "{% endif %}{% endfor %}",
                "{\"messages\": [{\"role\": \"user\"}, {\"role\": \"tool\"}]}", "line 1",
                "Only user and assistant roles are supported!");
    check_render("{% if false %}{{ raise_exception('never') }}{% endif %}ok", NULL, "ok");
}

/* Undefined values: empty and falsy when printed or tested, an error when
 * used as an object, like Jinja2's default Undefined. */
static void test_undefined(void)
{
    check_render("[{{ nothing }}]{{ nothing is defined }}{{ nothing|default('d') }}"
                 "{{ nothing|length }}{% for x in nothing %}x{% else %}empty{% endfor %}"
                 "{{ 'a' in nothing }}{{ nothing == none }}{% if not nothing %}falsy{% endif %}",
                 NULL, "[]Falsed0emptyFalseFalsefalsy");
    check_render("{{ m.missing }}|{{ m['missing'] }}|{{ m.missing is undefined }}",
                 "{\"m\": {\"role\": \"user\"}}", "||True");
    check_error("{{ nothing.attr }}", NULL, "line 1", "'nothing' is undefined");
    check_error("{{ nothing['k'] }}", NULL, "line 1", "'nothing' is undefined");
    check_error("{{ nothing.upper() }}", NULL, "line 1", "'nothing' is undefined");
    check_error("{{ nothing() }}", NULL, "line 1", "'nothing' is undefined");
    check_error("{{ nothing + 1 }}", NULL, "line 1", "'nothing' is undefined");
    check_error("{{ m.missing.deeper }}", "{\"m\": {}}", "line 1",
                "'dict object' has no attribute 'missing'");
}

/* strftime_now uses the current local time. */
static void test_strftime_now(void)
{
    char want[16];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(want, sizeof(want), "%Y", &tm);
    char *out = NULL;
    ogi_status st = jinja_render("{{ strftime_now('%Y') }}", NULL, &out);
    checks++;
    TEST_CHECK(st == OGI_OK && out != NULL && strcmp(out, want) == 0, "strftime_now: %s",
               out ? out : ogi_last_error());
    free(out);
}

/* ---- The shared tokenizers' templates against golden.json ---- */

/* A special token in tokenizer_config.json: a string or {"content": ...}. */
static json_t *special_token(const json_t *config, const char *name)
{
    const json_t *tok = json_object_get(config, name);
    if (json_is_object(tok))
        tok = json_object_get(tok, "content");
    return json_is_string(tok) ? json_incref((json_t *)tok) : NULL;
}

/* The context transformers' apply_chat_template passes: messages, tools and
 * documents (None when not given), add_generation_prompt and the special
 * tokens. */
static json_t *golden_context(const json_t *config, const json_t *entry)
{
    static const char *const specials[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    json_t *ctx = json_object();
    json_object_set(ctx, "messages", json_object_get(entry, "messages"));
    json_object_set(ctx, "add_generation_prompt", json_object_get(entry, "add_generation_prompt"));
    json_object_set_new(ctx, "tools", json_null());
    json_object_set_new(ctx, "documents", json_null());
    for (size_t i = 0; i < sizeof(specials) / sizeof(specials[0]); i++) {
        json_t *tok = special_token(config, specials[i]);
        if (tok != NULL)
            json_object_set_new(ctx, specials[i], tok);
    }
    return ctx;
}

/* chat_template is a string, or a list of {name, template} (take "default"). */
static const char *chat_template_of(const json_t *config)
{
    const json_t *t = json_object_get(config, "chat_template");
    if (json_is_string(t))
        return json_string_value(t);
    size_t i;
    const json_t *item;
    json_array_foreach(t, i, item)
    {
        const json_t *name = json_object_get(item, "name");
        if (json_is_string(name) && strcmp(json_string_value(name), "default") == 0)
            return json_string_value(json_object_get(item, "template"));
    }
    return NULL;
}

static void test_golden(const char *name)
{
    char path[1024];
    json_error_t err;
    /* configs hold integers too big for jansson (model_max_length), goldens
     * hold \u0000 */
    snprintf(path, sizeof(path), "%s/tokenizers/%s/tokenizer_config.json", test_shared_dir(), name);
    json_t *config = json_load_file(path, JSON_DECODE_INT_AS_REAL, &err);
    snprintf(path, sizeof(path), "%s/tokenizers/%s/golden.json", test_shared_dir(), name);
    json_t *golden = json_load_file(path, JSON_ALLOW_NUL, &err);
    checks++;
    TEST_CHECK(config != NULL && golden != NULL, "%s: cannot read the tokenizer files", name);
    const char *tpl = config != NULL ? chat_template_of(config) : NULL;
    const json_t *chats = json_object_get(golden, "chat");
    size_t i, renders = 0, mismatches = 0;
    const json_t *entry;
    json_array_foreach(chats, i, entry)
    {
        json_t *ctx = golden_context(config, entry);
        const char *want = json_string_value(json_object_get(entry, "rendered"));
        char *out = NULL;
        ogi_status st = tpl != NULL ? jinja_render(tpl, ctx, &out) : OGI_ERR_NOT_FOUND;
        bool same = st == OGI_OK && want != NULL && strcmp(out, want) == 0;
        renders++;
        mismatches += !same;
        checks++;
        TEST_CHECK(same, "%s chat %zu: want [%s] got [%s] (%s)", name, i, want ? want : "",
                   out ? out : "", st == OGI_OK ? "ok" : ogi_last_error());
        free(out);
        json_decref(ctx);
    }
    printf("golden chat %s: %zu renders, %zu mismatches\n", name, renders, mismatches);
    json_decref(config);
    json_decref(golden);
}

/* ---- Limits: hostile templates fail quickly ---- */

/* prefix, n times open, middle, n times close, suffix: a deeply nested template. */
static char *nested(const char *prefix, const char *open, size_t n, const char *middle,
                    const char *close, const char *suffix)
{
    size_t lp = strlen(prefix), lo = strlen(open), lm = strlen(middle);
    size_t lc = strlen(close), ls = strlen(suffix);
    char *s = malloc(lp + (lo + lc) * n + lm + ls + 1);
    if (s == NULL)
        return NULL;
    char *p = s;
    memcpy(p, prefix, lp);
    p += lp;
    for (size_t i = 0; i < n; i++, p += lo)
        memcpy(p, open, lo);
    memcpy(p, middle, lm);
    p += lm;
    for (size_t i = 0; i < n; i++, p += lc)
        memcpy(p, close, lc);
    memcpy(p, suffix, ls + 1);
    return s;
}

static void check_limit(const char *what, const char *tpl, const char *message)
{
    double start = now_seconds();
    char *out = NULL;
    ogi_status st = jinja_render(tpl, NULL, &out);
    double seconds = now_seconds() - start;
    checks++;
    TEST_CHECK(st == OGI_ERR_INVALID_ARGUMENT && strstr(ogi_last_error(), message) != NULL,
               "%s: want an error with '%s', got %s", what, message,
               st == OGI_OK ? "success" : ogi_last_error());
    checks++;
    TEST_CHECK(seconds < 10.0, "%s took %.1f s", what, seconds);
    printf("limit %-28s %6.3f s: %s\n", what, seconds, st == OGI_OK ? "ok" : ogi_last_error());
    free(out);
}

static void test_limits(void)
{
    check_limit("range(10**9)", "{% for i in range(10**9) %}x{% endfor %}", "range too big");
    check_limit("nested loops 1e10",
                "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
                "{% endfor %}",
                "loop iterations");
    check_limit("infinite macro recursion",
                "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursion deeper than");
    check_limit("exponential macro calls",
                "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
                "{% endmacro %}{{ f(60) }}",
                "macro calls");
    check_limit("output size",
                "{% for i in range(100000) %}{% for j in range(10) %}"
                "0123456789012345678901234567890123456789012345678901234567890123456789"
                "0123456789012345678901234567890123456789012345678901234567890123456789"
                "0123456789012345678901234567890123456789012345678901234567890123456789"
                "0123456789012345678901234567890123456789012345678901234567890123456789"
                "0123456789012345678901234567890123456789012345678901234567890123456789"
                "{% endfor %}{% endfor %}",
                "output exceeds");
    check_limit(
        "memory",
        "{% set ns = namespace(s='') %}{% for i in range(100000) %}"
        "{% set ns.s = ns.s ~ 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' %}{% endfor %}",
        "memory");
    check_limit("work",
                "{% set s = 'x' * 50000000 %}{% for i in range(100000) %}{{ s|length }}"
                "{% endfor %}",
                "too much work");
    check_limit("value nesting",
                "{% set ns = namespace(x=[]) %}{% for i in range(5000) %}{% set ns.x = [ns.x] %}"
                "{% endfor %}{{ ns.x }}",
                "nested more than");
    static const struct {
        const char *what, *prefix, *open, *middle, *close, *suffix, *message;
        size_t n;
    } deep[] = {
        {"10,000 nested ifs", "", "{% if true %}", "x", "{% endif %}", "", "200 levels", 10000},
        {"10,000 nested fors", "", "{% for i in [1] %}", "x", "{% endfor %}", "", "200 levels",
         10000},
        {"10,000 nested macros", "", "{% macro m() %}", "x", "{% endmacro %}", "", "200 levels",
         10000},
        {"10,000 parentheses", "{{ ", "(", "1", ")", " }}", "nested too deeply", 10000},
        {"10,000 lists", "{{ ", "[", "", "]", " }}", "nested too deeply", 10000},
        {"10,000 nots", "{{ ", "not ", "1", "", " }}", "200 levels", 10000},
        {"10,000 minus signs", "{{ ", "-", "1", "", " }}", "200 levels", 10000},
        {"10,000 inline ifs", "{{ 1", " if 1 else 1", "", "", " }}", "200 levels", 10000},
        {"100,000 attributes", "{{ x", ".a", "", "", " }}", "recursion deeper than", 100000},
        {"100,000 filters", "{{ 1", "|abs", "", "", " }}", "recursion deeper than", 100000},
        {"100,000 additions", "{{ 1", " + 1", "", "", " }}", "recursion deeper than", 100000},
    };
    for (size_t i = 0; i < sizeof(deep) / sizeof(deep[0]); i++) {
        char *tpl = nested(deep[i].prefix, deep[i].open, deep[i].n, deep[i].middle, deep[i].close,
                           deep[i].suffix);
        if (tpl != NULL)
            check_limit(deep[i].what, tpl, deep[i].message);
        free(tpl);
    }
}

/* ---- Malformed input never crashes ---- */

static void check_no_crash(const char *tpl, const json_t *ctx)
{
    char *out = NULL;
    ogi_status st = jinja_render(tpl, ctx, &out);
    checks++;
    TEST_CHECK((st == OGI_OK) == (out != NULL) &&
                   (st == OGI_OK || st == OGI_ERR_INVALID_ARGUMENT) &&
                   (st == OGI_OK || strncmp(ogi_last_error(), "chat template line ", 19) == 0),
               "status %s, message %s", ogi_status_name(st), ogi_last_error());
    free(out);
}

static void test_bad_input(void)
{
    char *out = (char *)"untouched";
    checks += 3;
    TEST_CHECK(jinja_render(NULL, NULL, &out) == OGI_ERR_INVALID_ARGUMENT && out == NULL,
               "NULL template");
    TEST_CHECK(jinja_render("x", NULL, NULL) == OGI_ERR_INVALID_ARGUMENT, "NULL output");
    json_t *array = json_array();
    TEST_CHECK(jinja_render("x", array, &out) == OGI_ERR_INVALID_ARGUMENT && out == NULL,
               "context that is not an object");
    json_decref(array);

    /* Invalid UTF-8 in the template and in the context's strings. */
    json_t *ctx = json_object();
    json_object_set_new(ctx, "s", json_stringn_nocheck("a\xff\xc3(\xed\xa0\x80z", 8));
    check_no_crash(
        "{{ '\xff\xfe' }}\xc3{{ s }}{{ s|upper }}{{ s|title }}{{ [s] }}{{ s|tojson }}"
        "{{ s|tojson(ensure_ascii=true) }}{{ s[::-1] }}{{ s|length }}{{ s.split() }}"
        "{{ s|trim }}{{ s|wordcount }}{{ s.center(20) }}{% for c in s %}{{ c }}{% endfor %}",
        ctx);
    check_render("{{ 'a\xff'|upper }}", NULL, "A\xef\xbf\xbd");
    json_decref(ctx);
    /* "\u0000" in a message stays in the output, with its length. */
    json_t *nul_ctx = json_object();
    json_object_set_new(nul_ctx, "s", json_stringn("a\0b", 3));
    size_t len = 0;
    out = NULL;
    checks++;
    TEST_CHECK(jinja_render_len("[{{ s }}]", nul_ctx, &out, &len) == OGI_OK && len == 5 &&
                   memcmp(out, "[a\0b]", 5) == 0,
               "NUL inside a string: len %zu", len);
    free(out);
    json_decref(nul_ctx);
    check_no_crash("", NULL);
    check_no_crash("{{", NULL);
    check_no_crash("{%", NULL);
    check_no_crash("{#", NULL);
    check_no_crash("{{ '\\", NULL);
    check_no_crash("{{ '\\x4' }}", NULL);
    check_no_crash("{{ \"\\U0011ffff\" }}", NULL);
}

/* Every truncation and many random mutations of a real template render or
 * fail cleanly (run under ASan this also checks memory safety). */
static void test_mutations(void)
{
    char path[1024];
    json_error_t err;
    snprintf(path, sizeof(path), "%s/tokenizers/qwen3/tokenizer_config.json", test_shared_dir());
    json_t *config = json_load_file(path, JSON_DECODE_INT_AS_REAL, &err);
    const char *tpl = config != NULL ? chat_template_of(config) : NULL;
    checks++;
    TEST_CHECK(tpl != NULL, "qwen3 chat template missing");
    if (tpl == NULL) {
        json_decref(config);
        return;
    }
    json_t *ctx = load_context(
        "{\"messages\": [{\"role\": \"system\", \"content\": \"sys\"},"
        "{\"role\": \"user\", \"content\": \"hi\"},"
        "{\"role\": \"assistant\", \"content\": \"<think>r</think>ok\", \"tool_calls\": "
        "[{\"function\": {\"name\": \"f\", \"arguments\": {\"a\": [1, 2.5, null]}}}]},"
        "{\"role\": \"tool\", \"content\": \"42\"}],"
        "\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\"}}],"
        "\"add_generation_prompt\": true, \"enable_thinking\": false}");
    size_t len = strlen(tpl);
    char *buf = malloc(len + 1);
    int failures_before = test_failures;
    for (size_t cut = 0; buf != NULL && cut <= len && test_failures == failures_before; cut++) {
        memcpy(buf, tpl, cut);
        buf[cut] = '\0';
        check_no_crash(buf, ctx);
    }
    static const char alphabet[] = "{}%#-+()[]'\".,:|~=! \n\tabz019_\xc3\xa9\xff";
    uint64_t rng = 12345;
    for (int iter = 0; buf != NULL && iter < 3000 && test_failures == failures_before; iter++) {
        memcpy(buf, tpl, len + 1);
        int edits = 1 + (int)(test_rand(&rng) % 4);
        for (int e = 0; e < edits; e++)
            buf[test_rand(&rng) % len] = alphabet[test_rand(&rng) % (sizeof(alphabet) - 1)];
        check_no_crash(buf, ctx);
    }
    free(buf);
    json_decref(ctx);
    json_decref(config);
}

/* ---- Throughput ---- */

static void bench_qwen3(void)
{
    char path[1024];
    json_error_t err;
    snprintf(path, sizeof(path), "%s/tokenizers/qwen3/tokenizer_config.json", test_shared_dir());
    json_t *config = json_load_file(path, JSON_DECODE_INT_AS_REAL, &err);
    const char *tpl = config != NULL ? chat_template_of(config) : NULL;
    json_t *ctx =
        load_context("{\"messages\": [{\"role\": \"system\", \"content\": \"You are a "
                     "helpful assistant.\"}, {\"role\": \"user\", \"content\": \"Hello\"}, "
                     "{\"role\": \"assistant\", \"content\": \"Hi! How can I help?\"}, "
                     "{\"role\": \"user\", \"content\": \"Tell me a joke.\"}], "
                     "\"add_generation_prompt\": true}");
    if (tpl == NULL || ctx == NULL) {
        json_decref(config);
        json_decref(ctx);
        return;
    }
    int n = 2000;
    double start = now_seconds();
    for (int i = 0; i < n; i++) {
        char *out = NULL;
        if (jinja_render(tpl, ctx, &out) == OGI_OK)
            free(out);
    }
    double us = (now_seconds() - start) / n * 1e6;
    printf("qwen3 chat template, 4 messages: %.1f us per render (parse + render)\n", us);
    json_decref(ctx);
    json_decref(config);
}

int main(void)
{
    test_features();
    test_errors();
    test_raise_exception();
    test_undefined();
    test_strftime_now();
    test_golden("docstring-llama");
    test_golden("llama2");
    test_golden("llama3");
    test_golden("qwen3");
    test_limits();
    test_bad_input();
    test_mutations();
    bench_qwen3();
    return test_finish("test_jinja", checks);
}
