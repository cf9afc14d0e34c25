// http.h — HTTP/1.1 messages for `sd serve`: a strict, bounded request parser over a byte buffer, response
// framing, and the small codecs the API needs (base64, percent-decoding, basic auth).
//
// The parser is a pure function of the bytes received so far, so the socket loop can call it after every read
// and a fuzzer can call it on anything. It accepts what curl, browsers, Python's requests and nginx send:
// CRLF line endings, a Content-Length body (or none). It refuses, with the status a client should see:
// an oversized header section (431), a body over the limit (413), chunked or other transfer codings (501),
// obsolete line folding, bad or duplicate Content-Length, control bytes, a missing Host on HTTP/1.1 (400),
// and versions other than 1.0 / 1.1 (505). Left out: chunked request bodies, trailers, absolute-form targets
// (proxies), HTTP/2.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sd::http {

struct Limits {
    size_t max_header_bytes = 16 * 1024;   // request line + headers + the blank line
    size_t max_body_bytes = 32u << 20;     // Content-Length above this: 413 (png-info carries a base64 PNG)
    size_t max_headers = 100;
};

using Headers = std::vector<std::pair<std::string, std::string>>;  // names lower-cased, values trimmed

struct Request {
    std::string method;   // "GET", "POST", ... (case-sensitive, as RFC 9110 says)
    std::string target;   // as sent: "/sdapi/v1/progress?skip_current_image=true"
    std::string path;     // percent-decoded path without the query
    std::string query;    // raw text after '?', empty when none
    int minor_version = 1;  // HTTP/1.minor
    Headers headers;
    std::string body;
    bool keep_alive = true;       // after this request's response
    bool expect_continue = false; // the client waits for "100 Continue" before sending the body

    // The first header of that (lower-case) name, or null.
    const std::string* header(const std::string& name) const;
};

enum class Parse { incomplete, complete, error };

struct ParseResult {
    Parse status = Parse::incomplete;
    size_t consumed = 0;      // complete: bytes of this request (the next pipelined request starts there)
    int error_status = 0;     // error: the HTTP status to answer with, then close
    std::string error;        // error: one sentence for the response body
    bool headers_done = false;  // incomplete: the header section is in and valid, the body is still coming
};

// Parses one request from the start of data[0, size). On incomplete, *out holds the header fields when
// headers_done (so the caller can answer Expect: 100-continue); on complete, the whole request.
ParseResult parse_request(const char* data, size_t size, const Limits& limits, Request* out);

struct Response {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    Headers headers;  // extra headers, e.g. {"WWW-Authenticate", "Basic"}
};

// Status line, Date-free headers (Content-Type, Content-Length, Connection, extras), blank line and the body
// (left out for HEAD, with the Content-Length the GET would have had).
std::string serialize(const Response& r, bool keep_alive, bool head_only = false);
const char* reason_phrase(int status);

std::string base64_encode(const void* data, size_t size);
// Standard alphabet, padding optional, ASCII whitespace ignored; a data URL prefix ("data:image/png;base64,")
// is skipped as the webui's decode_base64_to_image does. False on any other byte or a bad length.
bool base64_decode(const std::string& text, std::vector<uint8_t>* out);

// "%2F" → "/", and '+' → ' ' when form is true (query strings); false on a malformed escape.
bool percent_decode(const std::string& in, std::string* out, bool form);
// The value of `name` in a query string ("a=1&b=2"), percent-decoded; false when absent or malformed.
bool query_param(const std::string& query, const std::string& name, std::string* value);

// Equal length and bytes, in time that depends only on the lengths (not on where they differ).
bool constant_time_equal(const std::string& a, const std::string& b);

// "user:pass,user2:pass2" as the webui's --api-auth; throws naming the problem (no ':' or an empty user).
std::vector<std::pair<std::string, std::string>> parse_credentials(const std::string& spec);
// Whether an Authorization header (may be null) carries Basic credentials in `allowed`. Every pair is
// compared in constant time, so the time taken does not tell which user or byte was wrong.
bool basic_auth_ok(const std::string* authorization, const std::vector<std::pair<std::string, std::string>>& allowed);

}  // namespace sd::http
