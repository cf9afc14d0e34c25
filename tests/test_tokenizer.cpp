// CLIP tokenizer: exact ids for every prompt of tests/data/tokenizer_golden.txt (written by the independent Python
// tokenizer tools/tokenizer_reference.py), the webui chunking, the vocabulary layout, and arbitrary bytes.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tokenizer/clip_tokenizer.h"

using namespace sd;

namespace {

struct GoldenCase {
    std::string label;  // readable form, for messages
    std::string text;   // raw bytes
    std::vector<int> ids;
    std::vector<std::vector<int>> chunks;  // only for empty and over-75-token prompts
};

std::vector<int> parse_ints(const std::string& s) {
    std::vector<int> v;
    std::istringstream in(s);
    for (int x; in >> x;) v.push_back(x);
    return v;
}

std::string from_hex(const std::string& hex) {
    std::string out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) out += (char)std::stoi(hex.substr(i, 2), nullptr, 16);
    return out;
}

std::vector<GoldenCase> load_golden() {
    const char* path = "tests/data/tokenizer_golden.txt";
    std::ifstream f(path);
    if (!f) throw std::runtime_error(std::string(path) + ": cannot open (run the tests from the repository root)");
    std::vector<GoldenCase> cases;
    std::string line, label;
    while (std::getline(f, line)) {
        std::string key = line.substr(0, line.find(' ')), rest = line.size() > key.size() ? line.substr(key.size() + 1) : "";
        if (key == "#") label = rest;
        else if (key == "text") cases.push_back({label, from_hex(rest), {}, {}});
        else if (key == "ids") cases.back().ids = parse_ints(rest);
        else if (key == "chunk") cases.back().chunks.push_back(parse_ints(rest));
    }
    return cases;
}

std::string join(const std::vector<int>& v) {
    std::string s;
    for (int x : v) s += (s.empty() ? "" : " ") + std::to_string(x);
    return s;
}

// CLIP's bpe() as simple_tokenizer.py writes it — find the lowest-ranked adjacent pair, merge all its occurrences
// in one left-to-right scan, repeat — for a word of printable ASCII, whose bytes are their own BPE symbols. Ranks
// come straight from tokenizer/merges.txt (a repeated pair keeps its last rank, as Python's dict does), ids from
// the spellings token() gives. Quadratic; the tokenizer's heap version must give the same ids.
struct NaiveClipBpe {
    std::unordered_map<std::string, int> rank;   // "left right" → line number
    std::unordered_map<std::string, int> id_of;  // spelling → id

    NaiveClipBpe() {
        const char* path = "tokenizer/merges.txt";
        std::ifstream f(path);
        if (!f) throw std::runtime_error(std::string(path) + ": cannot open (run the tests from the repository root)");
        int r = 0;
        for (std::string line; std::getline(f, line);) rank[line] = r++;
        const ClipTokenizer& tok = ClipTokenizer::get();
        for (int id = 0; id < ClipTokenizer::kVocabSize; id++) id_of[tok.token(id)] = id;
    }

    std::vector<int> ids(const std::string& word) const {
        std::vector<std::string> w;
        for (char c : word) w.push_back(std::string(1, c));
        w.back() += "</w>";
        while (w.size() > 1) {
            int best = -1;
            size_t at = 0;
            for (size_t k = 0; k + 1 < w.size(); k++) {
                auto it = rank.find(w[k] + " " + w[k + 1]);
                if (it != rank.end() && (best < 0 || it->second < best)) best = it->second, at = k;
            }
            if (best < 0) break;
            const std::string first = w[at], second = w[at + 1];
            std::vector<std::string> merged;
            for (size_t k = 0; k < w.size();) {
                if (k + 1 < w.size() && w[k] == first && w[k + 1] == second) merged.push_back(first + second), k += 2;
                else merged.push_back(w[k++]);
            }
            w = merged;
        }
        std::vector<int> out;
        for (const std::string& s : w) out.push_back(id_of.at(s));
        return out;
    }
};

std::string random_word(std::mt19937& rng, const std::string& alphabet, size_t length) {
    std::string s(length, ' ');
    for (char& c : s) c = alphabet[rng() % alphabet.size()];
    return s;
}

}  // namespace

TEST_CASE("tokenizer: every golden prompt gives exactly the reference ids") {
    const ClipTokenizer& tok = ClipTokenizer::get();
    std::vector<GoldenCase> cases = load_golden();
    REQUIRE(cases.size() > 300);
    int failed = 0, with_chunks = 0;
    for (const GoldenCase& c : cases) {
        std::vector<int> got = tok.encode(c.text);
        if (got != c.ids && failed++ < 10)
            MESSAGE("prompt " << c.label << "\n  expected " << join(c.ids) << "\n  got      " << join(got));
        if (!c.chunks.empty()) {
            with_chunks++;
            CHECK(tok.encode_chunks(c.text) == c.chunks);
        }
    }
    CHECK(failed == 0);
    CHECK(with_chunks >= 5);  // empty prompts and the long ones are in the file
}

TEST_CASE("tokenizer: well-known ids and the webui chunk layout") {
    const ClipTokenizer& tok = ClipTokenizer::get();
    // Ids any SD 1.x user can check with HF's CLIPTokenizer.
    CHECK(tok.encode("a photo of an astronaut riding a horse") == std::vector<int>{320, 1125, 539, 550, 18376, 6765, 320, 4558});
    CHECK(tok.token(0) == "!");
    CHECK(tok.token(256) == "!</w>");
    CHECK(tok.token(320) == "a</w>");
    CHECK(tok.token(ClipTokenizer::kStart) == "<|startoftext|>");
    CHECK(tok.token(ClipTokenizer::kEnd) == "<|endoftext|>");
    CHECK_THROWS_AS(tok.token(49408), std::runtime_error);
    CHECK(tok.decode(tok.encode("Hello, World!")) == "hello , world ! ");

    // 75 tokens fit one chunk, 76 need two; each chunk is start + ids + end + end padding, 77 in all.
    std::string words;
    for (int n = 1; n <= 151; n++) {
        words += "tok ";
        std::vector<std::vector<int>> chunks = tok.encode_chunks(words);
        std::vector<int> ids = tok.encode(words);
        REQUIRE(ids.size() == (size_t)n);
        REQUIRE(chunks.size() == (size_t)((n + 74) / 75));
        for (size_t c = 0; c < chunks.size(); c++) {
            REQUIRE(chunks[c].size() == 77);
            size_t begin = c * 75, count = std::min<size_t>(75, ids.size() - begin);
            CHECK(chunks[c][0] == ClipTokenizer::kStart);
            CHECK(std::equal(ids.begin() + begin, ids.begin() + begin + count, chunks[c].begin() + 1));
            for (size_t k = 1 + count; k < 77; k++) CHECK(chunks[c][k] == ClipTokenizer::kEnd);
        }
    }
}

TEST_CASE("tokenizer: arbitrary bytes never crash and give vocabulary ids") {
    const ClipTokenizer& tok = ClipTokenizer::get();
    std::mt19937 rng(7);
    for (int trial = 0; trial < 2000; trial++) {
        std::string s(rng() % 64, '\0');
        for (char& ch : s) ch = (char)(rng() % 4 ? rng() % 256 : "&#;x' a1<|>"[rng() % 11]);
        for (int id : tok.encode(s)) REQUIRE((id >= 0 && id < ClipTokenizer::kVocabSize));
        tok.decode(tok.encode(s));
    }
    // A long word and a long run of symbols: one piece each, every byte a BPE symbol.
    std::string long_word(20000, 'q'), long_symbols(20000, '%');
    CHECK(!tok.encode(long_word).empty());
    CHECK(!tok.encode(long_symbols).empty());
}

TEST_CASE("tokenizer: BPE gives CLIP's naive merge loop's ids and is fast on a 32,000-letter word") {
    const ClipTokenizer& tok = ClipTokenizer::get();
    const NaiveClipBpe naive;
    std::mt19937 rng(20240611);
    // One piece each (CLIP splits digits apart, so none here). Random letters, then small alphabets whose repeats
    // put many occurrences of one pair side by side ("aaaa": the non-overlapping left-to-right scan) and make
    // merges create pairs ranked below the one just merged.
    const std::pair<const char*, size_t> words[] = {
        {"abcdefghijklmnopqrstuvwxyz", 2000}, {"ab", 600}, {"a", 101}, {"es", 400}, {"lo", 400},
        {"aeiou", 300}, {"thing", 300}, {"er", 300}, {"!?.,%", 300}, {"abcdefghijklmnopqrstuvwxyz", 7},
    };
    for (const auto& [alphabet, length] : words) {
        for (int rep = 0; rep < (length < 100 ? 50 : 1); rep++) {
            std::string word = random_word(rng, alphabet, length);
            std::vector<int> expected = naive.ids(word), got = tok.encode(word);
            if (got != expected) MESSAGE("word " << word << "\n  expected " << join(expected) << "\n  got      " << join(got));
            REQUIRE(got == expected);
        }
    }

    // The merge loop used to rescan the word per merge: 32,000 letters took 0.3 s at -O2 and 14 s under the
    // fuzzers' sanitizers, 128,000 letters 5.5 s. The heap version takes milliseconds; 3 s leaves room for a
    // loaded machine and sanitizer builds while still catching a quadratic loop.
    std::string word = random_word(rng, "abcdefghijklmnopqrstuvwxyz", 32000);
    auto t0 = std::chrono::steady_clock::now();
    std::vector<int> ids = tok.encode(word);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE("32,000-letter word: " << ids.size() << " ids in " << seconds << " s");
    CHECK(seconds < 3.0);
    CHECK(ids.size() > 10000);  // random letters: about 1.8 letters a token
    CHECK(ids.size() < 32000);
    CHECK(tok.decode(ids) == word + " ");
}

TEST_CASE("tokenizer: concurrent callers get the same ids") {
    const ClipTokenizer& tok = ClipTokenizer::get();
    std::vector<std::string> prompts = {"a castle on a hill, 8k", "café naïve", "東京 タワー", "don't &amp; it's"};
    std::vector<std::vector<int>> expected;
    for (auto& p : prompts) expected.push_back(tok.encode(p + " unseen" + std::to_string(expected.size())));
    std::vector<int> bad(2, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; t++)
        threads.emplace_back([&, t] {
            for (int rep = 0; rep < 200; rep++)
                for (size_t i = 0; i < prompts.size(); i++)
                    if (tok.encode(prompts[i] + " unseen" + std::to_string(i)) != expected[i]) bad[t]++;
        });
    for (auto& th : threads) th.join();
    CHECK(bad[0] == 0);
    CHECK(bad[1] == 0);
}
