/* openapi.c — GET /openapi.json: the OpenAPI 3.1 description of this API. The document is
 * src/http/openapi.json, kept next to the handlers it describes so that a change to a route and to
 * its description go together; cmake/embed.cmake builds it into the binary (a generated C file in
 * the build directory), so a server always serves the description of its own version and needs no
 * file at run time. No authentication: it says nothing the source does not. */
#include <stddef.h>

#include "http/api.h"
#include "http/session.h"

/* Defined by the generated file (build dir, generated/openapi_json.c). */
extern const char mailwerk_openapi_json[];
extern const size_t mailwerk_openapi_json_len;

void http_openapi(struct http_call *c)
{
	http_respond_text(c->s, 200, mailwerk_openapi_json, mailwerk_openapi_json_len, NULL);
}
