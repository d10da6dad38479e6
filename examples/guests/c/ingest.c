// ingest, in C with libc (wasi-libc): the first stage of examples/guests/polyglot.toml.
//
// Checks each record: white space around it is trimmed (isspace); an empty record, or one
// holding a control character, is refused with the guest error code `handler-failed` (the
// runtime dead-letters it as handler_failed). An accepted record is sent on to "js-transform"
// (the JavaScript guest), counted (the count lives in this component's storage under
// "accepted", as decimal text: strtol, snprintf) and logged. A request gets "accepted #N" as
// its reply, N being the count.
//
// The bindings (guest.h, guest.c, guest_component_type.o) are generated from
// wit/switchyard.wit by wit-bindgen's C generator when the guest is built
// (examples/guests/build.sh); clang-19 compiles against Debian's wasi-libc into a core module
// that imports WASI preview 1 (libc's stdio), and `switchyard component new` adds the WASI
// preview1 adapter.

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest.h"

typedef switchyard_component_types_error_t sy_error;

static const char COUNT_KEY[] = "accepted";
static const char NEXT[] = "js-transform";

static void log_text(switchyard_component_logging_level_t level, const char *text) {
    guest_string_t message;
    guest_string_set(&message, text);
    switchyard_component_logging_log(level, &message);
}

// Fails the message with `text` (copied: the generated post-return function frees it).
static bool fail(sy_error *err, const char *text) {
    err->code = SWITCHYARD_COMPONENT_TYPES_ERROR_CODE_HANDLER_FAILED;
    guest_string_dup(&err->message, text);
    return false;
}

// Reads the stored count into *count (0 when absent); false with the host's error.
static bool read_count(long *count, sy_error *err) {
    guest_list_u8_t key = {(uint8_t *)COUNT_KEY, strlen(COUNT_KEY)};
    guest_option_list_u8_t got;
    if (!switchyard_component_storage_get(&key, &got, err)) return false;
    *count = 0;
    if (got.is_some) {
        char text[24] = {0};
        size_t n = got.val.len < sizeof text - 1 ? got.val.len : sizeof text - 1;
        memcpy(text, got.val.ptr, n);
        *count = strtol(text, NULL, 10);
        guest_list_u8_free(&got.val);
    }
    return true;
}

static bool accept(const switchyard_component_types_envelope_t *msg, guest_option_list_u8_t *reply, sy_error *err) {
    uint8_t *record = msg->payload.ptr;
    size_t len = msg->payload.len;
    while (len && isspace(record[0])) record++, len--;
    while (len && isspace(record[len - 1])) len--;
    if (len == 0) {
        log_text(SWITCHYARD_COMPONENT_LOGGING_LEVEL_WARN, "refused an empty record");
        return fail(err, "empty record");
    }
    for (size_t i = 0; i < len; i++) {
        if (iscntrl(record[i])) {
            char why[64];
            snprintf(why, sizeof why, "control character at byte %zu", i);
            log_text(SWITCHYARD_COMPONENT_LOGGING_LEVEL_WARN, why);
            return fail(err, why);
        }
    }

    long count;
    if (!read_count(&count, err)) return false;
    guest_string_t next = {(uint8_t *)NEXT, strlen(NEXT)};
    guest_list_u8_t payload = {record, len};
    if (!switchyard_component_messaging_send_message(&next, &payload, msg->codec, err)) return false;
    count++;
    char text[24];
    int n = snprintf(text, sizeof text, "%ld", count);
    guest_list_u8_t key = {(uint8_t *)COUNT_KEY, strlen(COUNT_KEY)};
    guest_list_u8_t value = {(uint8_t *)text, (size_t)n};
    if (!switchyard_component_storage_set(&key, &value, err)) return false;

    char line[80];
    snprintf(line, sizeof line, "accepted record #%ld (%zu bytes)", count, len);
    log_text(SWITCHYARD_COMPONENT_LOGGING_LEVEL_INFO, line);

    reply->is_some = msg->message_type == SWITCHYARD_COMPONENT_TYPES_MESSAGE_TYPE_REQUEST;
    if (reply->is_some) {
        char *text = malloc(32);
        if (!text) abort();
        snprintf(text, 32, "accepted #%ld", count);
        reply->val = (guest_list_u8_t){(uint8_t *)text, strlen(text)};
    }
    return true;
}

bool exports_switchyard_component_handler_handle_message(exports_switchyard_component_handler_envelope_t *msg,
                                                        guest_option_list_u8_t *ret,
                                                        exports_switchyard_component_handler_error_t *err) {
    bool ok = accept(msg, ret, err);
    // The envelope is ours to free (the reply and the error are freed after the call).
    exports_switchyard_component_handler_envelope_free(msg);
    return ok;
}

// ingest makes no requests: every callback is acknowledged.
bool exports_switchyard_component_handler_handle_callback(
    guest_string_t *request_id, exports_switchyard_component_handler_result_envelope_error_t *outcome,
    exports_switchyard_component_handler_error_t *err) {
    (void)err;
    guest_string_free(request_id);
    exports_switchyard_component_handler_result_envelope_error_free(outcome);
    return true;
}
