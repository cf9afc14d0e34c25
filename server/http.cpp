// http.cpp — the HTTP/1.1 request parser, response framing and codecs (see http.h for what is refused).
#include "server/http.h"

#include <cstring>
#include <stdexcept>

namespace sd::http {
namespace {

bool is_tchar(unsigned char c) {  // RFC 9110 token characters (c != 0: strchr finds the terminating NUL)
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr);
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c; }

std::string lower(std::string s) {
    for (char& c : s) c = lower(c);
    return s;
}

ParseResult fail(int status, const std::string& why) {
    ParseResult r;
    r.status = Parse::error;
    r.error_status = status;
    r.error = why;
    return r;
}

// The end of the header section (index just past "\r\n\r\n"), or 0 when not yet received.
size_t header_end(const char* d, size_t n) {
    for (size_t i = 3; i < n; i++)
        if (d[i] == '\n' && d[i - 1] == '\r' && d[i - 2] == '\n' && d[i - 3] == '\r') return i + 1;
    return 0;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

const std::string* Request::header(const std::string& name) const {
    for (const auto& h : headers)
        if (h.first == name) return &h.second;
    return nullptr;
}

ParseResult parse_request(const char* d, size_t n, const Limits& lim, Request* out) {
    // Blank lines before a request are allowed (RFC 9112 2.2), a few of them.
    size_t start = 0;
    while (start < n && start < 8 && (d[start] == '\r' || d[start] == '\n')) start++;
    d += start;
    n -= start;
    size_t hend = header_end(d, n < lim.max_header_bytes ? n : lim.max_header_bytes);
    if (hend == 0) {
        if (n >= lim.max_header_bytes)
            return fail(431, "the request's header section is larger than " + std::to_string(lim.max_header_bytes) +
                             " bytes");
        // Catch garbage early instead of waiting for 16 KB of it: the method must be a token.
        for (size_t i = 0; i < n && d[i] != ' '; i++)
            if (!is_tchar((unsigned char)d[i]) || i > 32) return fail(400, "the request line is malformed");
        return {};
    }
    *out = Request{};
    // Split into lines; every line ends in CRLF (a bare CR or LF inside is refused below).
    std::vector<std::pair<size_t, size_t>> lines;  // [begin, end) without the CRLF
    for (size_t b = 0; b < hend - 2;) {
        const void* nl = std::memchr(d + b, '\n', hend - 2 - b);
        size_t e = nl ? (size_t)((const char*)nl - d) : hend - 2;
        if (e == b || d[e - 1] != '\r') return fail(400, "a header line does not end in CRLF");
        lines.push_back({b, e - 1});
        b = e + 1;
    }
    if (lines.empty()) return fail(400, "the request line is missing");
    // Request line: METHOD SP target SP HTTP/1.x
    std::string rl(d + lines[0].first, lines[0].second - lines[0].first);
    size_t s1 = rl.find(' '), s2 = s1 == std::string::npos ? s1 : rl.find(' ', s1 + 1);
    if (s1 == std::string::npos || s2 == std::string::npos || rl.find(' ', s2 + 1) != std::string::npos)
        return fail(400, "the request line is malformed");
    out->method = rl.substr(0, s1);
    out->target = rl.substr(s1 + 1, s2 - s1 - 1);
    std::string version = rl.substr(s2 + 1);
    if (out->method.empty() || out->method.size() > 32) return fail(400, "the request method is malformed");
    for (char c : out->method)
        if (!is_tchar((unsigned char)c)) return fail(400, "the request method is malformed");
    if (version.size() != 8 || version.compare(0, 5, "HTTP/") != 0 || version[6] != '.' || version[5] < '0' ||
        version[5] > '9' || version[7] < '0' || version[7] > '9')
        return fail(400, "the HTTP version is malformed");
    if (version[5] != '1') return fail(505, "only HTTP/1.0 and HTTP/1.1 are supported");
    out->minor_version = version[7] - '0';
    if (out->target.empty() || out->target[0] != '/') return fail(400, "the request target must start with '/'");
    for (unsigned char c : out->target)
        if (c <= 0x20 || c >= 0x7f) return fail(400, "the request target contains a control or non-ASCII byte");
    size_t q = out->target.find('?');
    out->query = q == std::string::npos ? "" : out->target.substr(q + 1);
    if (!percent_decode(out->target.substr(0, q), &out->path, false) || out->path.find('\0') != std::string::npos)
        return fail(400, "the request path has a malformed percent escape");

    // Header fields: name ":" OWS value OWS
    if (lines.size() - 1 > lim.max_headers)
        return fail(431, "the request has more than " + std::to_string(lim.max_headers) + " header fields");
    for (size_t i = 1; i < lines.size(); i++) {
        const char* b = d + lines[i].first;
        size_t len = lines[i].second - lines[i].first;
        if (b[0] == ' ' || b[0] == '\t') return fail(400, "obsolete header line folding is not accepted");
        const char* colon = (const char*)std::memchr(b, ':', len);
        if (!colon || colon == b) return fail(400, "a header field has no name");
        for (const char* p = b; p < colon; p++)
            if (!is_tchar((unsigned char)*p)) return fail(400, "a header field name contains an invalid character");
        const char *v = colon + 1, *ve = b + len;
        while (v < ve && (*v == ' ' || *v == '\t')) v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        for (const char* p = v; p < ve; p++) {
            unsigned char c = (unsigned char)*p;
            if ((c < 0x20 && c != '\t') || c == 0x7f) return fail(400, "a header value contains a control byte");
        }
        out->headers.push_back({lower(std::string(b, colon)), std::string(v, ve)});
    }
    if (out->minor_version == 1 && !out->header("host")) return fail(400, "an HTTP/1.1 request needs a Host header");
    if (out->header("transfer-encoding"))
        return fail(501, "Transfer-Encoding request bodies are not supported; send Content-Length");
    // Content-Length: digits only; repeated only with the same value.
    uint64_t length = 0;
    bool have_length = false;
    for (const auto& h : out->headers) {
        if (h.first != "content-length") continue;
        if (h.second.empty() || h.second.size() > 19) return fail(400, "Content-Length is malformed");
        uint64_t v = 0;
        for (char c : h.second) {
            if (c < '0' || c > '9') return fail(400, "Content-Length is malformed");
            v = v * 10 + (uint64_t)(c - '0');
        }
        if (have_length && v != length) return fail(400, "the request has two different Content-Length values");
        length = v;
        have_length = true;
    }
    if (length > lim.max_body_bytes)
        return fail(413, "the request body is larger than " + std::to_string(lim.max_body_bytes) + " bytes");
    // Connection semantics: 1.1 keeps alive unless "close"; 1.0 closes unless "keep-alive".
    std::string conn = out->header("connection") ? lower(*out->header("connection")) : "";
    out->keep_alive = out->minor_version == 1 ? conn.find("close") == std::string::npos
                                              : conn.find("keep-alive") != std::string::npos;
    const std::string* expect = out->header("expect");
    out->expect_continue = expect && lower(*expect) == "100-continue" && out->minor_version == 1;

    const size_t total = start + hend + (size_t)length;
    if (n - hend < length) {
        ParseResult r;
        r.headers_done = true;
        return r;
    }
    out->body.assign(d + hend, (size_t)length);
    ParseResult r;
    r.status = Parse::complete;
    r.consumed = total;
    return r;
}

const char* reason_phrase(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    }
    return "Unknown";
}

std::string serialize(const Response& r, bool keep_alive, bool head_only) {
    std::string s = "HTTP/1.1 " + std::to_string(r.status) + " " + reason_phrase(r.status) + "\r\n";
    if (!r.content_type.empty()) s += "Content-Type: " + r.content_type + "\r\n";
    s += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
    s += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
    for (const auto& h : r.headers) s += h.first + ": " + h.second + "\r\n";
    s += "\r\n";
    if (!head_only) s += r.body;
    return s;
}

std::string base64_encode(const void* data, size_t size) {
    static const char* T = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const uint8_t* p = (const uint8_t*)data;
    std::string out;
    out.reserve((size + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= size; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out += T[v >> 18];
        out += T[(v >> 12) & 63];
        out += T[(v >> 6) & 63];
        out += T[v & 63];
    }
    if (size - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out += T[v >> 18];
        out += T[(v >> 12) & 63];
        out += "==";
    } else if (size - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out += T[v >> 18];
        out += T[(v >> 12) & 63];
        out += T[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

bool base64_decode(const std::string& text, std::vector<uint8_t>* out) {
    size_t i = 0;
    if (text.compare(0, 5, "data:") == 0) {  // data:image/png;base64,....
        size_t comma = text.find(',');
        if (comma == std::string::npos) return false;
        i = comma + 1;
    }
    out->clear();
    out->reserve(text.size() / 4 * 3);
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    for (; i < text.size(); i++) {
        char c = text[i];
        int v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '+' || c == '-') v = 62;  // '-' and '_': the URL-safe alphabet, as Python's b64decode ignores
        else if (c == '/' || c == '_') v = 63;
        else if (c == '=') { pad++; continue; }
        else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        else return false;
        if (pad) return false;  // data after padding
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out->push_back((uint8_t)(acc >> bits));
        }
    }
    return bits < 6 && pad <= 2;  // 6 leftover bits: a length of 4k+1 symbols, impossible
}

bool percent_decode(const std::string& in, std::string* out, bool form) {
    out->clear();
    for (size_t i = 0; i < in.size(); i++) {
        if (in[i] == '%') {
            if (i + 2 >= in.size()) return false;
            int h = hex_digit(in[i + 1]), l = hex_digit(in[i + 2]);
            if (h < 0 || l < 0) return false;
            *out += (char)(h * 16 + l);
            i += 2;
        } else if (form && in[i] == '+') {
            *out += ' ';
        } else {
            *out += in[i];
        }
    }
    return true;
}

bool query_param(const std::string& query, const std::string& name, std::string* value) {
    size_t b = 0;
    while (b <= query.size()) {
        size_t e = query.find('&', b);
        if (e == std::string::npos) e = query.size();
        std::string part = query.substr(b, e - b);
        size_t eq = part.find('=');
        std::string k;
        if (percent_decode(part.substr(0, eq), &k, true) && k == name)
            return percent_decode(eq == std::string::npos ? "" : part.substr(eq + 1), value, true);
        b = e + 1;
    }
    return false;
}

bool constant_time_equal(const std::string& a, const std::string& b) {
    // Compare over the longer length so a short guess costs the same as a long one; lengths leak, bytes do not.
    const size_t n = a.size() > b.size() ? a.size() : b.size();
    volatile unsigned char diff = (unsigned char)(a.size() != b.size());
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < a.size() ? (unsigned char)a[i] : 0, y = i < b.size() ? (unsigned char)b[i] : 0;
        diff = diff | (unsigned char)(x ^ y);
    }
    return diff == 0;
}

std::vector<std::pair<std::string, std::string>> parse_credentials(const std::string& spec) {
    std::vector<std::pair<std::string, std::string>> out;
    size_t b = 0;
    while (b <= spec.size()) {
        size_t e = spec.find(',', b);
        if (e == std::string::npos) e = spec.size();
        std::string item = spec.substr(b, e - b);
        size_t colon = item.find(':');
        if (colon == std::string::npos || colon == 0)
            throw std::runtime_error("--api-auth expects USER:PASSWORD[,USER2:PASSWORD2...], got an entry without "
                                     "a user name and ':'");
        out.push_back({item.substr(0, colon), item.substr(colon + 1)});
        b = e + 1;
    }
    return out;
}

bool basic_auth_ok(const std::string* authorization, const std::vector<std::pair<std::string, std::string>>& allowed) {
    if (!authorization || authorization->size() < 6 || lower(authorization->substr(0, 6)) != "basic ") return false;
    std::vector<uint8_t> raw;
    if (!base64_decode(authorization->substr(6), &raw)) return false;
    std::string text(raw.begin(), raw.end());
    size_t colon = text.find(':');
    if (colon == std::string::npos) return false;
    const std::string user = text.substr(0, colon), pass = text.substr(colon + 1);
    bool ok = false;
    for (const auto& c : allowed) {  // no early exit: every entry is compared
        bool u = constant_time_equal(user, c.first), p = constant_time_equal(pass, c.second);
        ok |= u & p;
    }
    return ok;
}

}  // namespace sd::http
