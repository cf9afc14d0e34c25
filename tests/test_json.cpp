// JSON parser: accepts what RFC 8259 allows, rejects everything else with "JSON error at byte N: ...",
// decodes escapes (surrogate pairs too) to UTF-8, and survives hostile nesting.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "json.h"

using namespace sd;

namespace {
// The error message parse_json throws for `text`, or "" if it parsed.
std::string json_error(const std::string& text) {
    try {
        parse_json(text);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}
}  // namespace

TEST_CASE("json: values, nesting and member order") {
    JsonValue v = parse_json(" {\"b\": [1, -2.5e1, true, false, null, \"s\"], \"a\": {}, \"c\": []}\n");
    REQUIRE(v.kind == JsonKind::object);
    REQUIRE(v.keys.size() == 3);
    CHECK(v.keys[0] == "b");  // order of appearance, not sorted
    CHECK(v.keys[1] == "a");
    const JsonValue* b = v.get("b");
    REQUIRE(b);
    REQUIRE(b->items.size() == 6);
    CHECK(b->items[0].number == 1);
    CHECK(b->items[1].number == -25);
    CHECK(b->items[1].text == "-2.5e1");
    CHECK(b->items[2].kind == JsonKind::boolean);
    CHECK(b->items[2].boolean);
    CHECK_FALSE(b->items[3].boolean);
    CHECK(b->items[4].kind == JsonKind::null);
    CHECK(b->items[5].text == "s");
    CHECK(b->offset == 7);
    CHECK(v.get("a")->kind == JsonKind::object);
    CHECK(v.get("c")->items.empty());
    CHECK(v.get("zzz") == nullptr);
    CHECK(parse_json("0").number == 0);
    CHECK(parse_json("-0.0").number == 0);
    CHECK(parse_json("1E+2").number == 100);
    CHECK(parse_json("\"\"").text.empty());
}

TEST_CASE("json: string escapes and UTF-8") {
    CHECK(parse_json(R"("a\"b\\c\/d\b\f\n\r\t")").text == "a\"b\\c/d\b\f\n\r\t");
    CHECK(parse_json(R"("\u00e9")").text == "\xc3\xa9");                // é
    CHECK(parse_json(R"("\u20AC")").text == "\xe2\x82\xac");            // €
    CHECK(parse_json(R"("\ud83d\ude00")").text == "\xf0\x9f\x98\x80");  // U+1F600 from a surrogate pair
    CHECK(parse_json(R"("\uDBFF\uDFFF")").text == "\xf4\x8f\xbf\xbf");  // U+10FFFF, the last code point
    CHECK(parse_json("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"").text == "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    std::string nul = parse_json(R"("a\u0000b")").text;  // an escaped NUL is legal JSON; callers decide
    CHECK(nul.size() == 3);
    CHECK(nul[1] == '\0');

    CHECK(json_error(R"("\ud83d")").find("high surrogate") != std::string::npos);
    CHECK(json_error(R"("\ud83dx")").find("high surrogate") != std::string::npos);
    CHECK(json_error(R"("\ud83d\u0041")").find("high surrogate") != std::string::npos);
    CHECK(json_error(R"("\ude00")").find("lone low surrogate") != std::string::npos);
    CHECK(json_error(R"("\u12G4")").find("hex digit") != std::string::npos);
    CHECK(json_error(R"("\u12")").find("\\u") != std::string::npos);
    CHECK(json_error(R"("\x")").find("invalid escape") != std::string::npos);
    CHECK(json_error(R"("\')").find("invalid escape") != std::string::npos);
    CHECK(json_error("\"abc").find("unterminated string") != std::string::npos);
    CHECK(json_error("\"abc\\").find("unterminated string") != std::string::npos);
    // raw control characters, NUL included, must be escaped
    CHECK(json_error(std::string("\"a\0b\"", 5)).find("control character byte 0x00") != std::string::npos);
    CHECK(json_error("\"a\nb\"").find("control character") != std::string::npos);
    CHECK(json_error("\"a\tb\"").find("control character") != std::string::npos);
    // invalid UTF-8: overlong, encoded surrogate, above U+10FFFF, stray continuation, truncated sequence
    for (const char* bad : {"\"\xc0\x80\"", "\"\xe0\x80\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"",
                            "\"\x80\"", "\"\xc3\"", "\"\xe2\x82\"", "\"\xff\""}) {
        INFO("input: ", bad);
        CHECK(json_error(bad).find("invalid UTF-8") != std::string::npos);
    }
}

TEST_CASE("json: json_quote round-trips every byte string that is valid UTF-8") {
    std::string all;
    for (int c = 1; c < 128; c++) all += (char)c;
    all += std::string("\0", 1) + "\xc3\xa9\xf0\x9f\x98\x80";
    std::string q = json_quote(all);
    CHECK(parse_json(q).text == all);
    CHECK(json_quote("a\"b\\c\n") == "\"a\\\"b\\\\c\\n\"");
    CHECK(json_quote(std::string("\x01", 1)) == "\"\\u0001\"");
}

TEST_CASE("json: numbers follow the grammar exactly") {
    for (const char* ok : {"0", "-0", "7", "-12", "3.25", "1e5", "1E-5", "2.5e+10", "-0.0e0", "123456789012345678901234"}) {
        INFO("input: ", ok);
        CHECK(json_error(ok) == "");
    }
    for (const char* bad : {"01", "-", "+1", ".5", "1.", "1.e3", "1e", "1e+", "0x10", "NaN", "Infinity", "-Infinity",
                            "--1", "1..2", "- 1"}) {
        INFO("input: ", bad);
        CHECK(json_error(bad).find("JSON error at byte") == 0);
    }
    CHECK(std::isinf(parse_json("1e400").number));
    CHECK(parse_json("-1e400").number < 0);
    CHECK(parse_json("1e-400").number == 0);
    CHECK(parse_json("0.000001e-400").number == 0);
    CHECK(std::isinf(parse_json("123456789e308").number));

    uint64_t u = 0;
    CHECK(parse_json("18446744073709551615").as_uint64(&u));
    CHECK(u == UINT64_MAX);  // exact, although a double would round it
    CHECK(parse_json("9007199254740993").as_uint64(&u));
    CHECK(u == 9007199254740993ull);
    CHECK(parse_json("0").as_uint64(&u));
    CHECK(u == 0);
    for (const char* not_u64 : {"18446744073709551616", "99999999999999999999999", "-1", "1.0", "1e3", "\"5\"", "null"}) {
        INFO("input: ", not_u64);
        CHECK_FALSE(parse_json(not_u64).as_uint64(&u));
    }
}

TEST_CASE("json: syntax errors name the byte") {
    CHECK(json_error("{\"a\":1,}") == "JSON error at byte 7: unexpected '}', expected a string key in object");
    CHECK(json_error("") == "JSON error at byte 0: unexpected end of input, expected a value");
    CHECK(json_error("   ") == "JSON error at byte 3: unexpected end of input, expected a value");
    CHECK(json_error("[1,]").find("JSON error at byte 3:") == 0);
    CHECK(json_error("[1 2]").find("expected ',' or ']'") != std::string::npos);
    CHECK(json_error("{\"a\" 1}").find("expected ':'") != std::string::npos);
    CHECK(json_error("{\"a\":1 \"b\":2}").find("expected ',' or '}'") != std::string::npos);
    CHECK(json_error("{1:2}").find("expected a string key") != std::string::npos);
    CHECK(json_error("{'a':1}").find("expected a string key") != std::string::npos);
    CHECK(json_error("[1] x").find("JSON error at byte 4: unexpected 'x' after the JSON value") == 0);
    CHECK(json_error("{} {}").find("after the JSON value") != std::string::npos);
    CHECK(json_error("[1] // c").find("after the JSON value") != std::string::npos);
    CHECK(json_error("tru").find("unexpected") != std::string::npos);
    CHECK(json_error("nul").find("JSON error at byte 0") == 0);
    CHECK(json_error("True").find("JSON error") == 0);
    CHECK(json_error("\xef\xbb\xbf{}").find("byte 0xef") != std::string::npos);  // no BOM
    CHECK(json_error("[\f1]").find("byte 0x0c") != std::string::npos);          // not JSON whitespace
    CHECK(json_error("{\"a\":[1,{\"b\":}]}").find("JSON error at byte 13") == 0);
}

TEST_CASE("json: duplicate keys are an error at the second key") {
    CHECK(json_error("{\"a\":1,\"b\":2,\"a\":3}") == "JSON error at byte 13: duplicate key \"a\"");
    CHECK(json_error("{\"x\":{\"k\":1,\"k\":1}}").find("duplicate key \"k\"") != std::string::npos);
    CHECK(json_error("{\"k\":1,\"K\":2}") == "");  // case matters
    CHECK(json_error("{\"a\":{\"k\":1},\"b\":{\"k\":1}}") == "");  // per object
    // the same key spelled with an escape is still the same key
    CHECK(json_error(R"({"a":1,"\u0061":2})").find("duplicate key \"a\"") != std::string::npos);
}

TEST_CASE("json: nesting depth is limited, deep input does not crash") {
    std::string deep(100000, '[');
    CHECK(json_error(deep).find("nesting deeper than 64 levels") != std::string::npos);
    std::string deep_obj;
    for (int i = 0; i < 100000; i++) deep_obj += "{\"a\":";
    CHECK(json_error(deep_obj).find("nesting deeper than 64 levels") != std::string::npos);

    std::string ok64 = std::string(64, '[') + std::string(64, ']');
    CHECK(json_error(ok64) == "");
    std::string bad65 = std::string(65, '[') + std::string(65, ']');
    CHECK(json_error(bad65) == "JSON error at byte 64: nesting deeper than 64 levels");
    CHECK_NOTHROW(parse_json(bad65.data(), bad65.size(), {65}));
}

TEST_CASE("json: the number of values can be bounded") {
    CHECK(parse_json("[1,2,3]", {64, 4}).items.size() == 3);  // the array and its three numbers
    CHECK_THROWS_WITH(parse_json("[1,2,3]", {64, 3}), "JSON error at byte 5: more than 3 values");
    CHECK_THROWS_WITH(parse_json("{\"a\":{\"b\":[]}}", {64, 2}), doctest::Contains("more than 2 values"));
}
