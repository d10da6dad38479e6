// transform, in JavaScript (componentize-js): the middle stage of examples/guests/polyglot.toml.
//
// Upper-cases each record, sends it on to "py-store" (the Python guest), keeps the last one in
// this component's storage under "last", logs it (logging.log) and prints it with
// console.log. A guest's stdout is not the host's: the host hands each line the guest prints
// to its log sink, tagged with the component's id (`[stdout] js-transform: ...` from
// `switchyard run`). A request gets the upper-cased record as its reply, except a request
// "fetch URL": the guest starts an outgoing HTTP request (wasi:http), which the host refuses
// (no component is granted HTTP) and counts as a capability denial (the `denied` column of
// `switchyard run`'s table); the reply says the request was started. The handler is
// synchronous, so the rejected promise is not awaited.
//
// Built by componentize-js against wit/switchyard.wit, world `guest` (examples/guests/build.sh).

import { log } from "switchyard:component/logging@0.1.0";
import { sendMessage } from "switchyard:component/messaging@0.1.0";
import * as storage from "switchyard:component/storage@0.1.0";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const LAST = encoder.encode("last");

// An import that fails throws an error whose payload is the host's `error` record; thrown
// from handleMessage, that record is the message's error (it is dead-lettered with it).
function hostError(e) {
  return e && e.payload ? e.payload : { code: "internal", message: String(e) };
}

export const handler = {
  handleMessage(msg) {
    const text = decoder.decode(msg.payload);
    if (msg.messageType === "request" && text.startsWith("fetch ")) {
      const url = text.slice(6);
      fetch(url).then(
        (response) => log("warn", `fetch ${url}: status ${response.status}`),
        (e) => log("info", `fetch ${url} refused: ${e}`),
      );
      return encoder.encode(`fetch started: ${url}`);
    }
    const upper = text.toUpperCase();
    const bytes = encoder.encode(upper);
    try {
      sendMessage("py-store", bytes, msg.codec);
      storage.set(LAST, bytes);
    } catch (e) {
      throw hostError(e);
    }
    log("info", `forwarded ${upper} to py-store`);
    console.log(`${text} -> ${upper}`);
    return msg.messageType === "request" ? bytes : undefined;
  },

  // transform makes no requests: every callback is acknowledged.
  handleCallback(_requestId, _outcome) {},
};
