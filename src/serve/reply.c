// The replies every handler writes (a JSON body or a JSON error) and the check of names taken from a
// request path; below server.c, api.c, tables_json.c and files.c, which all use them.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve_internal.h"

void reply_json(struct serve_reply *reply, unsigned status, cJSON *json)
{
    char *body = json ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    if (!body) {
        reply_error(reply, 500, "out of memory");
        return;
    }
    free(reply->body);
    reply->status = status;
    reply->content_type = "application/json";
    reply->body = body;
    reply->size = strlen(body);
}

void reply_error(struct serve_reply *reply, unsigned status, const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    cJSON *json = cJSON_CreateObject();
    char *body = json && cJSON_AddStringToObject(json, "error", message) ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    free(reply->body);
    reply->status = status;
    reply->content_type = "application/json";
    reply->body = body ? body : strdup("{\"error\":\"out of memory\"}");
    reply->size = reply->body ? strlen(reply->body) : 0;
}

int serve_plain_name(const char *text, size_t max)
{
    size_t n = strlen(text);
    if (n == 0 || n > max || !strcmp(text, ".") || !strcmp(text, "..")) return 0;
    return strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}
