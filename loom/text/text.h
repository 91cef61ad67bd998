// Text: tokenizers (characters, words, GPT-2 byte-level BPE and BPE training) and language-model data.
//   auto tok = loom::text::make_tokenizer("gpt2");
//   auto [train, val] = loom::text::make_lm_data(tok->encode(loom::text::load_corpus("kjv")), 128);
//   auto [x, y] = train->get_batch(16);   // i64 (16, 128): y is x shifted by one token
#pragma once
#include "loom/text/bpe.h"
#include "loom/text/char_tokenizer.h"
#include "loom/text/corpus.h"
#include "loom/text/lm_dataset.h"
#include "loom/text/pretokenize.h"
#include "loom/text/seq2seq_data.h"
#include "loom/text/tokenizer.h"
#include "loom/text/unicode.h"
#include "loom/text/word_vocab.h"
