/*
 * ogi — ONNX GenAI Interface. The one public header.
 *
 * Conventions (as in SQLite and libuv):
 *  - every function that can fail returns an ogi_status and writes results
 *    through out-parameters; on failure ogi_last_error() gives the reason;
 *  - whoever creates an object frees it with its own _free(), and _free(NULL)
 *    is a no-op;
 *  - options are by-value structs initialised by *_default_options(): set only
 *    what you change.
 */
#ifndef OGI_H
#define OGI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OGI_VERSION "0.1.0"

typedef enum ogi_status {
    OGI_OK = 0,
    OGI_ERR_INVALID_ARGUMENT, /* a caller's argument is wrong */
    OGI_ERR_INVALID_MODEL,    /* a model file or graph is malformed */
    OGI_ERR_UNSUPPORTED,      /* valid, but not implemented (an op, a dtype) */
    OGI_ERR_OUT_OF_MEMORY,
    OGI_ERR_IO,        /* a file could not be opened, read or mapped */
    OGI_ERR_RUNTIME,   /* a run failed on its inputs (shapes, indices) */
    OGI_ERR_NOT_FOUND, /* a named input, output or file does not exist */
} ogi_status;

/* Short name of a status ("OGI_ERR_IO"). Never NULL. */
const char *ogi_status_name(ogi_status status);

/* The message of the last failing call on this thread ("model.onnx: node
 * 'MatMul_3' input 1: ..."). Borrowed; valid until the next failing call on
 * this thread. Empty string when nothing failed. */
const char *ogi_last_error(void);

/* Element types, numbered as ONNX's TensorProto.DataType. */
typedef enum ogi_dtype {
    OGI_DTYPE_UNDEFINED = 0,
    OGI_FLOAT32 = 1,
    OGI_UINT8 = 2,
    OGI_INT8 = 3,
    OGI_UINT16 = 4,
    OGI_INT16 = 5,
    OGI_INT32 = 6,
    OGI_INT64 = 7,
    OGI_STRING = 8,
    OGI_BOOL = 9,
    OGI_FLOAT16 = 10,
    OGI_FLOAT64 = 11,
    OGI_UINT32 = 12,
    OGI_UINT64 = 13,
    OGI_COMPLEX64 = 14,
    OGI_COMPLEX128 = 15,
    OGI_BFLOAT16 = 16,
    OGI_FLOAT8E4M3FN = 17,
    OGI_FLOAT8E4M3FNUZ = 18,
    OGI_FLOAT8E5M2 = 19,
    OGI_FLOAT8E5M2FNUZ = 20,
    OGI_UINT4 = 21,
    OGI_INT4 = 22,
    OGI_FLOAT4E2M1 = 23,
    OGI_FLOAT8E8M0 = 24,
    OGI_UINT2 = 25,
    OGI_INT2 = 26,
    OGI_DTYPE_COUNT
} ogi_dtype;

/* "float32", "int64", ... ; "undefined" for unknown values. */
const char *ogi_dtype_name(ogi_dtype dtype);
/* Bits per element (4 for int4, 2 for int2); 0 for string and unknown types. */
int ogi_dtype_bits(ogi_dtype dtype);

/* ---- Tensors ------------------------------------------------------------ */

#define OGI_MAX_RANK 16

/* A dense tensor: dtype, shape and a row-major buffer. Sub-byte types are
 * packed as ONNX packs them (low nibble first). */
typedef struct ogi_tensor ogi_tensor;

/* One element of an OGI_STRING tensor: len bytes (which may hold NULs), with
 * data[len] == '\0'; data may be NULL when len is 0. A string tensor's
 * buffer is an array of numel ogi_string, and the tensor owns the bytes they
 * point to: ogi_tensor_free frees them. String tensors come from
 * ogi_tensor_read_pb and from session outputs; ogi_tensor_create does not
 * make them. */
typedef struct ogi_string {
    char *data;
    size_t len;
} ogi_string;

/* Creates a zero-filled tensor that owns its buffer. rank 0 is a scalar.
 * Fails with OGI_ERR_UNSUPPORTED for OGI_STRING. */
ogi_status ogi_tensor_create(ogi_dtype dtype, int rank, const int64_t *dims, ogi_tensor **out);
void ogi_tensor_free(ogi_tensor *tensor);
ogi_dtype ogi_tensor_dtype(const ogi_tensor *tensor);
int ogi_tensor_rank(const ogi_tensor *tensor);
/* Borrowed array of rank dims. */
const int64_t *ogi_tensor_dims(const ogi_tensor *tensor);
int64_t ogi_tensor_numel(const ogi_tensor *tensor);
size_t ogi_tensor_nbytes(const ogi_tensor *tensor);
/* Borrowed pointer to the elements. */
void *ogi_tensor_data(ogi_tensor *tensor);

/* ---- Sessions: one ONNX graph, run many times ----------------------------- */

/* How the native engine computes the Attention op (opset 23+). INT8
 * quantizes Q and K to int8 (SageAttention-style: K smoothed by its mean,
 * per-block scales) for Q K^T and keeps softmax and P V in float32; it is
 * used where it is expected to be faster (prefill-sized query blocks) and
 * where qk_matmul_output is not requested, EXACT everywhere else. Attention
 * outputs stay within cosine 0.999 of EXACT on the models measured in
 * docs/int8-attention.md (relative L1 up to about 2 %). It applies as well
 * to the attention the engine fuses from MatMul / Softmax graphs. */
typedef enum ogi_attention_precision {
    OGI_ATTENTION_EXACT = 0, /* float32 throughout (default) */
    OGI_ATTENTION_INT8 = 1,
} ogi_attention_precision;

typedef struct ogi_session_options {
    int threads;                       /* worker threads; 0 = one per core */
    int fold_constants;                /* run constant-only subgraphs once at load (default 1) */
    size_t max_tensor_bytes;           /* refuse to create a larger tensor; 0 = no limit */
    ogi_attention_precision attention; /* default OGI_ATTENTION_EXACT */
    /* copy the weights that only MatMul reads into panels at load, the layout
     * the decode and prefill kernels stream fastest (default 1; 0 keeps every
     * weight in the mapped file, shared with other processes) */
    int pack_weights;
} ogi_session_options;

ogi_session_options ogi_session_default_options(void);

typedef struct ogi_session ogi_session;

/* Loads an ONNX model file (mapped; only the MatMul weights are copied, into
 * panels, unless options->pack_weights is 0) and prepares it to run.
 * External-data files must lie in the model's directory. */
ogi_status ogi_session_open(const char *model_path, const ogi_session_options *options,
                            ogi_session **out);
void ogi_session_free(ogi_session *session);

size_t ogi_session_input_count(const ogi_session *session);
size_t ogi_session_output_count(const ogi_session *session);
/* Borrowed names, valid while the session lives. NULL when out of range. */
const char *ogi_session_input_name(const ogi_session *session, size_t index);
const char *ogi_session_output_name(const ogi_session *session, size_t index);

/* The declared dtype and shape of input / output `index`: *rank is -1 when
 * the model does not declare a shape, and dims[d] is -1 for a symbolic or
 * unknown dim. dims must hold OGI_MAX_RANK entries. */
ogi_status ogi_session_input_info(const ogi_session *session, size_t index, ogi_dtype *dtype,
                                  int *rank, int64_t *dims);
ogi_status ogi_session_output_info(const ogi_session *session, size_t index, ogi_dtype *dtype,
                                   int *rank, int64_t *dims);

/* Runs the graph. inputs[i] is bound to the graph input named in_names[i]
 * (borrowed for the call); graph inputs that are also initializers may be
 * left out. For the output named out_names[i]:
 *  - outputs[i] == NULL on entry: it receives a new tensor, which the caller
 *    frees with ogi_tensor_free (NULL again if the run fails);
 *  - outputs[i] != NULL: the caller's tensor, of exactly the output's dtype
 *    and shape, that the output is computed into (no copy). Binding an output
 *    to an input's own tensor updates it in place where the op allows it (a
 *    KV cache written by TensorScatter); then no other node may read that
 *    input after the update. */
ogi_status ogi_session_run(ogi_session *session, size_t n_in, const char *const *in_names,
                           const ogi_tensor *const *inputs, size_t n_out,
                           const char *const *out_names, ogi_tensor **outputs);

/* Reads a serialized ONNX TensorProto (an input_N.pb / output_N.pb file).
 * *name_out (may be NULL) receives its name, to free with free(); NULL if
 * the proto has none. */
ogi_status ogi_tensor_read_pb(const char *path, ogi_tensor **out, char **name_out);

/* Frees memory that an ogi function returned to the caller (ids, text). */
void ogi_free(void *ptr);

/* ---- Generation: configs in the Hugging Face vocabulary ------------------- */

#define OGI_MAX_EOS_IDS 8

/* A logits processor the caller adds to the sampler chain: may change logits
 * (vocab entries) in place, given the sequence so far. Return 0 to go on. */
typedef int (*ogi_logits_processor)(void *user, float *logits, size_t vocab, const int32_t *ids,
                                    size_t n_ids);

typedef struct ogi_generation_config {
    int max_new_tokens;       /* generated tokens at most (default 20) */
    int min_new_tokens;       /* EOS and stop strings are ignored before this many */
    int do_sample;            /* 0: greedy (or beam search when num_beams > 1) */
    float temperature;        /* > 0; 1 = unchanged */
    int top_k;                /* 0 = off */
    float top_p;              /* in (0, 1]; 1 = off */
    float min_p;              /* in [0, 1); 0 = off */
    float repetition_penalty; /* 1 = off (CTRL-style, as transformers) */
    float presence_penalty;   /* 0 = off (OpenAI-style) */
    float frequency_penalty;  /* 0 = off */
    int no_repeat_ngram_size; /* 0 = off */
    int32_t eos_token_ids[OGI_MAX_EOS_IDS];
    int n_eos_token_ids;
    const char *const *stop_strings; /* borrowed; matched on text across tokens */
    size_t n_stop_strings;
    uint64_t seed;                  /* same seed, same tokens on every backend and thread count */
    int num_beams;                  /* 1 = no beam search */
    float length_penalty;           /* beam search: score / length^length_penalty */
    int num_return_sequences;       /* <= num_beams */
    int logprobs;                   /* top log-probabilities to report per token (0 = none) */
    int prefill_chunk;              /* prompt tokens per model run; 0 = the whole prompt at once */
    ogi_logits_processor processor; /* optional, runs first in the chain */
    void *processor_user;
} ogi_generation_config;

/* transformers' defaults: max_new_tokens 20, greedy, temperature 1, top_k 50
 * (used only when sampling), top_p 1, no penalties, seed 0, one beam. */
ogi_generation_config ogi_generation_default_config(void);

/* ---- Backends ---------------------------------------------------------------- */

/* The execution backends ogi knows ("native", "ort"), available or not. */
size_t ogi_backend_count(void);
const char *ogi_backend_name(size_t index);
/* 1 when the backend can run here (for "ort": its library was found). */
int ogi_backend_available(const char *name);

/* ---- Pipelines: a model directory, ready to generate ----------------------- */

typedef struct ogi_pipeline_options {
    const char *backend;   /* "native" (default) or "ort" */
    int threads;           /* 0 = one per core */
    size_t kv_cache_bytes; /* KV cache budget per generator; 0 = 1 GiB */
    int progress;          /* print load progress to stderr */
    /* Native backend: turn a concat-style KV cache (present = past ++ new)
     * into fixed buffers allocated once per generator and updated in place
     * (1, the default), or feed each run's presents back as past (0). */
    int static_kv_cache;
    /* Native backend: Attention precision (see ogi_attention_precision);
     * ONNX Runtime ignores it. */
    ogi_attention_precision attention;
    /* Native backend: copy the MatMul weights into panels at load (1, the
     * default; see ogi_session_options.pack_weights) or keep them mapped (0). */
    int pack_weights;
    /* ONNX Runtime only: */
    const char *ort_library; /* libonnxruntime.so path; NULL: $OGI_ORT_LIBRARY, then deps/ */
    int graph_optimization;  /* 0 disable, 1 basic, 2 extended, 99 all (default 99) */
    const char *providers;   /* execution providers in order, e.g. "cuda,cpu"; NULL: cpu */
} ogi_pipeline_options;

ogi_pipeline_options ogi_pipeline_default_options(void);

typedef struct ogi_pipeline ogi_pipeline;
typedef struct ogi_tokenizer ogi_tokenizer; /* see Tokenizers below */

/* Opens a model directory as exporters write it: model.onnx (+ external
 * data), config.json, generation_config.json, tokenizer.json,
 * tokenizer_config.json, optional genai_config.json. The I/O contract
 * (input_ids, attention_mask, position_ids, past_key_values.N.key/value ->
 * present.N.key/value) is detected from the graph. */
ogi_status ogi_pipeline_open(const char *model_dir, const ogi_pipeline_options *options,
                             ogi_pipeline **out);
void ogi_pipeline_free(ogi_pipeline *pipe);

/* The model's defaults: ogi_generation_default_config() updated with
 * generation_config.json (and genai_config.json's search section). */
ogi_generation_config ogi_pipeline_generation_config(const ogi_pipeline *pipe);
/* Borrowed; NULL when the directory has no tokenizer. */
const ogi_tokenizer *ogi_pipeline_tokenizer(const ogi_pipeline *pipe);
/* Tokens of context the model supports (max_position_embeddings). */
size_t ogi_pipeline_context_length(const ogi_pipeline *pipe);
double ogi_pipeline_load_seconds(const ogi_pipeline *pipe);
/* 1 when generators of this pipeline keep the KV cache in fixed buffers
 * updated in place (see ogi_pipeline_options.static_kv_cache). */
int ogi_pipeline_static_kv_cache(const ogi_pipeline *pipe);

typedef enum ogi_finish_reason {
    OGI_FINISH_NONE = 0,
    OGI_FINISH_LENGTH,      /* max_new_tokens reached */
    OGI_FINISH_EOS,         /* an EOS token was generated (it is in the ids) */
    OGI_FINISH_STOP_STRING, /* a stop string appeared (not in the text) */
    OGI_FINISH_STOPPED,     /* the stream callback asked to stop */
    OGI_FINISH_CANCELLED,   /* the stream callback cancelled */
    OGI_FINISH_CONTEXT,     /* the model's context is full */
} ogi_finish_reason;

const char *ogi_finish_reason_name(ogi_finish_reason reason);

typedef enum ogi_stream_action {
    OGI_STREAM_CONTINUE = 0,
    OGI_STREAM_STOP = 1,   /* finish now, keep what was generated */
    OGI_STREAM_CANCEL = 2, /* finish now, report OGI_FINISH_CANCELLED */
} ogi_stream_action;

/* Receives generated text as it comes, in pieces that never split a UTF-8
 * character (len bytes, not NUL-terminated). */
typedef ogi_stream_action (*ogi_stream_fn)(void *user, const char *piece, size_t len);

typedef struct ogi_metrics {
    double load_s;       /* pipeline open */
    double ttft_s;       /* time to first token (prompt processing included) */
    double tpot_s;       /* mean time per output token after the first */
    double tokens_per_s; /* generated tokens / generation time */
    size_t prompt_tokens;
    size_t generated_tokens;
} ogi_metrics;

typedef struct ogi_top_logprob {
    int32_t token; /* -1 past the end of a small vocabulary */
    float logprob;
} ogi_top_logprob;

typedef struct ogi_result {
    char *text;   /* generated text (UTF-8, NUL-terminated) */
    int32_t *ids; /* generated ids, the EOS that ended generation included */
    size_t n_ids;
    float *logprobs;               /* log-probability of each generated id */
    ogi_top_logprob *top_logprobs; /* n_ids x n_top, best first (config.logprobs) */
    int n_top;
    ogi_finish_reason finish;
    ogi_metrics metrics;
} ogi_result;

/* Frees what a result holds and zeroes it. */
void ogi_result_clear(ogi_result *result);

/* Generates a continuation of prompt (UTF-8 text, tokenized with special
 * tokens as the model's tokenizer adds them). config NULL = the model's
 * defaults. stream may be NULL. */
ogi_status ogi_generate(ogi_pipeline *pipe, const char *prompt, const ogi_generation_config *config,
                        ogi_stream_fn stream, void *user, ogi_result *result);
/* The same from token ids. */
ogi_status ogi_generate_ids(ogi_pipeline *pipe, const int32_t *prompt_ids, size_t n_prompt,
                            const ogi_generation_config *config, ogi_stream_fn stream, void *user,
                            ogi_result *result);

/* Mean cross-entropy (nats) of predicting ids[1..n-1] from the ones before,
 * in one pass over the window. */
ogi_status ogi_pipeline_score(ogi_pipeline *pipe, const int32_t *ids, size_t n, double *mean_ce);

/* ---- Chat: multi-turn, through the model's chat template, reusing the KV
 * cache of the conversation so far ------------------------------------------ */

typedef struct ogi_chat ogi_chat;

/* system may be NULL. */
ogi_status ogi_chat_create(ogi_pipeline *pipe, const char *system, ogi_chat **out);
void ogi_chat_free(ogi_chat *chat);
/* Adds the user's message, generates the assistant's reply (streamed), and
 * keeps both in the conversation. */
ogi_status ogi_chat_send(ogi_chat *chat, const char *user_message,
                         const ogi_generation_config *config, ogi_stream_fn stream, void *user,
                         ogi_result *result);

/* ---- Generator: the decode loop, step by step ------------------------------- */

typedef struct ogi_generator ogi_generator;

/* A generator for batch sequences, generating with config (NULL = model
 * defaults). Its KV cache is allocated within the pipeline's budget. */
ogi_status ogi_generator_create(ogi_pipeline *pipe, const ogi_generation_config *config,
                                size_t batch, ogi_generator **out);
void ogi_generator_free(ogi_generator *gen);
/* Appends tokens to sequence seq (the prompt, or a further turn). Sequences
 * of different lengths are left-padded when they run together. */
ogi_status ogi_generator_append(ogi_generator *gen, size_t seq, const int32_t *ids, size_t n);
/* Runs the model on what was appended and samples one token for every
 * unfinished sequence. */
ogi_status ogi_generator_step(ogi_generator *gen);
/* 1 when every sequence is done (EOS, max_new_tokens or context). */
int ogi_generator_done(const ogi_generator *gen);
int ogi_generator_seq_done(const ogi_generator *gen, size_t seq);
/* The tokens of sequence seq (prompt, appended and generated; no padding). */
const int32_t *ogi_generator_ids(const ogi_generator *gen, size_t seq, size_t *n);
size_t ogi_generator_new_tokens(const ogi_generator *gen, size_t seq);
/* Logits (vocab entries) of the last step for sequence seq, before sampling. */
const float *ogi_generator_logits(const ogi_generator *gen, size_t seq, size_t *vocab);
/* Log-probability of each generated token of seq. */
const float *ogi_generator_logprobs(const ogi_generator *gen, size_t seq, size_t *n);
/* The config.logprobs best alternatives at each generated position of seq
 * (n x config.logprobs entries, best first); NULL when not requested. */
const ogi_top_logprob *ogi_generator_top_logprobs(const ogi_generator *gen, size_t seq, size_t *n);
/* Forgets all but the first n tokens of a batch-1 generator, keeping the KV
 * cache of that prefix; generation then goes on from there. */
ogi_status ogi_generator_rewind(ogi_generator *gen, size_t n);
/* Model runs so far, and token positions they computed (for tests and
 * metrics: a rewind keeps the prefix's cache, so it is not computed again). */
size_t ogi_generator_model_runs(const ogi_generator *gen);
size_t ogi_generator_tokens_computed(const ogi_generator *gen);

/* ---- Tokenizers: Hugging Face tokenizer.json + chat templates ---------------- */

/* Opens model_dir/tokenizer.json and, when present, tokenizer_config.json
 * (special tokens, add_bos/eos, chat template). */
ogi_status ogi_tokenizer_open(const char *model_dir, ogi_tokenizer **out);
/* The same from explicit paths; config_path may be NULL. */
ogi_status ogi_tokenizer_open_files(const char *tokenizer_json_path, const char *config_path,
                                    ogi_tokenizer **out);
void ogi_tokenizer_free(ogi_tokenizer *tok);

/* Encodes UTF-8 text (len bytes; invalid UTF-8 is replaced by U+FFFD) like
 * Hugging Face's Tokenizer.encode(text, add_special_tokens). *ids is
 * malloc'ed: free with ogi_free. */
ogi_status ogi_tokenizer_encode(const ogi_tokenizer *tok, const char *text, size_t len,
                                int add_special_tokens, int32_t **ids, size_t *n_ids);
/* Like transformers' AutoTokenizer(text).input_ids: also adds the BOS/EOS
 * that tokenizer_config.json asks for (add_bos_token / add_eos_token). */
ogi_status ogi_tokenizer_encode_hf(const ogi_tokenizer *tok, const char *text, size_t len,
                                   int32_t **ids, size_t *n_ids);
/* Decodes ids to UTF-8 text (NUL-terminated, *len bytes; free with ogi_free). */
ogi_status ogi_tokenizer_decode(const ogi_tokenizer *tok, const int32_t *ids, size_t n_ids,
                                int skip_special_tokens, char **text, size_t *len);

size_t ogi_tokenizer_vocab_size(const ogi_tokenizer *tok);
/* -1 when the token does not exist. */
int32_t ogi_tokenizer_token_to_id(const ogi_tokenizer *tok, const char *token);
/* Borrowed; NULL for an unknown id. */
const char *ogi_tokenizer_id_to_token(const ogi_tokenizer *tok, int32_t id);
/* Ids of the special tokens named in tokenizer_config.json: which is "bos",
 * "eos", "pad" or "unk"; -1 when the tokenizer has none. */
int32_t ogi_tokenizer_special_id(const ogi_tokenizer *tok, const char *which);
int ogi_tokenizer_is_special(const ogi_tokenizer *tok, int32_t id);

/* Streaming decode: push ids one at a time, get only complete UTF-8 text;
 * the pieces concatenate to the decode of all ids at once. */
typedef struct ogi_decode_stream ogi_decode_stream;
ogi_status ogi_decode_stream_create(const ogi_tokenizer *tok, int skip_special_tokens,
                                    ogi_decode_stream **out);
/* *piece (borrowed, valid until the next call) may be "". */
ogi_status ogi_decode_stream_push(ogi_decode_stream *stream, int32_t id, const char **piece);
void ogi_decode_stream_free(ogi_decode_stream *stream);

/* Renders the tokenizer's chat template. messages_json is a JSON array of
 * {"role", "content", ...} objects; extra_json (may be NULL) a JSON object of
 * extra variables (tools, custom kwargs). *text is malloc'ed (ogi_free). */
ogi_status ogi_tokenizer_apply_chat_template(const ogi_tokenizer *tok, const char *messages_json,
                                             int add_generation_prompt, const char *extra_json,
                                             char **text);

#ifdef __cplusplus
}
#endif
#endif
