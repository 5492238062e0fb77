/* json.h — the one way the HTTP API reads a JSON request body: strict (RFC 8259), whole, and with
 * its nesting bounded before jansson sees it; and the one way it writes a time. */
#ifndef MAILWERK_HTTP_JSON_H
#define MAILWERK_HTTP_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Deepest nesting of arrays and objects a request body may have. A send request needs 3
 * ({"attachments":[{...}]}); jansson itself would recurse up to JSON_PARSER_MAX_DEPTH (2048). */
#define HTTP_JSON_MAX_DEPTH 32

/* Parses len octets of buf as one JSON text whose top level is an object or an array: no trailing
 * data, valid UTF-8, no duplicate keys in an object, no NUL in a string (\u0000 included), and no
 * more than max_depth nested arrays and objects (refused by a linear scan before jansson parses).
 * NULL on error, with a sentence such as "Invalid JSON at line 1, column 7: ..." in error. */
json_t *http_json_load(const char *buf, size_t len, unsigned max_depth, char *error, size_t error_size);

/* A time of the API (unix milliseconds) as its JSON string: RFC 3339 (util/date.h). */
json_t *http_json_time(int64_t ms);

#endif
