// ingest, in C with libc (wasi-libc): the first stage of examples/guests/polyglot.toml.
//
// Checks each record: white space around it is trimmed (isspace); an empty record, or one
// holding a control character, is refused with the guest error code `handler-failed` (the
// runtime dead-letters it as handler_failed). An accepted record is sent on to "js-transform"
// (the JavaScript guest), counted (the count lives in this component's storage under
// "accepted", as decimal text: strtol, snprintf) and logged. A request gets "accepted #N" as
// its reply, N being the count.
//
// Built by clang-19 against Debian's wasi-libc into a core module that imports WASI preview 1
// (libc's stdio); `switchyard component new` adds our world and the WASI preview1 adapter
// (examples/guests/build.sh).

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "switchyard.h"

static const char COUNT_KEY[] = "accepted";
static const char NEXT[] = "js-transform";

// What handle-message returns; its strings are freed by post_handle_message.
static sy_option_bytes_result message_result;
static sy_unit_result callback_result;

static void log_text(uint32_t level, const char *text) { sy_log(level, text, strlen(text)); }

// Returns an error result whose message is a copy of `text`.
static sy_option_bytes_result *fail(uint8_t code, const char *text) {
    message_result.is_err = 1;
    message_result.val.err.code = code;
    message_result.val.err.message.ptr = (uint8_t *)strdup(text);
    message_result.val.err.message.len = strlen(text);
    return &message_result;
}

// Returns the host's error as this message's result (the message is dead-lettered with it).
static sy_option_bytes_result *pass_on(sy_error err) {
    message_result.is_err = 1;
    message_result.val.err = err;
    return &message_result;
}

// Reads the stored count into *count (0 when absent). On a storage error, returns it.
static sy_option_bytes_result *read_count(long *count) {
    sy_option_bytes_result got;
    sy_storage_get((const uint8_t *)COUNT_KEY, strlen(COUNT_KEY), &got);
    if (got.is_err) return pass_on(got.val.err);
    *count = 0;
    if (got.val.ok.is_some) {
        char text[24] = {0};
        size_t n = got.val.ok.value.len < sizeof text - 1 ? got.val.ok.value.len : sizeof text - 1;
        memcpy(text, got.val.ok.value.ptr, n);
        *count = strtol(text, NULL, 10);
        sy_free_bytes(got.val.ok.value);
    }
    return NULL;
}

static sy_option_bytes_result *accept(const sy_envelope *msg) {
    const uint8_t *record = msg->payload.ptr;
    size_t len = msg->payload.len;
    while (len && isspace(record[0])) record++, len--;
    while (len && isspace(record[len - 1])) len--;
    if (len == 0) {
        log_text(SY_WARN, "refused an empty record");
        return fail(SY_HANDLER_FAILED, "empty record");
    }
    for (size_t i = 0; i < len; i++) {
        if (iscntrl(record[i])) {
            char why[64];
            snprintf(why, sizeof why, "control character at byte %zu", i);
            log_text(SY_WARN, why);
            return fail(SY_HANDLER_FAILED, why);
        }
    }

    long count;
    sy_option_bytes_result *failed = read_count(&count);
    if (failed) return failed;
    sy_unit_result done;
    sy_send_message(NEXT, strlen(NEXT), record, len, msg->codec, &done);
    if (done.is_err) return pass_on(done.err);
    count++;
    char text[24];
    int n = snprintf(text, sizeof text, "%ld", count);
    sy_storage_set((const uint8_t *)COUNT_KEY, strlen(COUNT_KEY), (const uint8_t *)text, (size_t)n, &done);
    if (done.is_err) return pass_on(done.err);

    char line[80];
    snprintf(line, sizeof line, "accepted record #%ld (%zu bytes)", count, len);
    log_text(SY_INFO, line);

    message_result.is_err = 0;
    message_result.val.ok.is_some = msg->message_type == SY_REQUEST;
    if (message_result.val.ok.is_some) {
        char *reply = malloc(32);
        if (!reply) abort();
        snprintf(reply, 32, "accepted #%ld", count);
        message_result.val.ok.value = (sy_bytes){(uint8_t *)reply, strlen(reply)};
    }
    return &message_result;
}

SY_HANDLER("handle-message") sy_option_bytes_result *handle_message(sy_envelope *msg) {
    sy_option_bytes_result *result = accept(msg);
    // The host passed the envelope in memory it allocated: it is ours to free.
    sy_free_envelope_fields(msg);
    free(msg);
    return result;
}

SY_HANDLER_POST("handle-message") void post_handle_message(sy_option_bytes_result *result) {
    if (result->is_err) {
        sy_free_bytes(result->val.err.message);
    } else if (result->val.ok.is_some) {
        sy_free_bytes(result->val.ok.value);
    }
}

// ingest makes no requests: every callback is acknowledged.
SY_HANDLER("handle-callback") sy_unit_result *handle_callback(sy_callback_args *args) {
    sy_free_callback_args(args);
    callback_result.is_err = 0;
    return &callback_result;
}
