/* The default generation config: transformers' GenerationConfig defaults. */
#include "ogi.h"

ogi_generation_config ogi_generation_default_config(void)
{
    /* top_k 50 is transformers' default; like there, it only applies when
     * do_sample is set. Every field left out is 0 / NULL: no penalties, no
     * EOS or stop strings, seed 0, no caller processor. */
    return (ogi_generation_config){
        .max_new_tokens = 20,
        .temperature = 1.0f,
        .top_k = 50,
        .top_p = 1.0f,
        .repetition_penalty = 1.0f,
        .num_beams = 1,
        .length_penalty = 1.0f,
        .num_return_sequences = 1,
    };
}
