;; transform: upper-cases each record's ASCII letters and forwards it to "store". A record that
;; is exactly "poison" makes it abort (`unreachable`, as a guest panic would): the trap
;; dead-letters that record and the supervisor restarts transform with a fresh instance.
;; A request gets the transformed record as its reply.
;;
;; A core module written by hand against the canonical ABI of wit/switchyard.wit; turn it into
;; a component with `switchyard component new transform.wat -o transform.wasm`.
;; Memory: return area at 16, import return area at 240, constants below 240, heap from 4096.
(module
  (import "switchyard:component/messaging@0.1.0" "send-message"
    (func $send (param i32 i32 i32 i32 i64 i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 96) "store")
  (data (i32.const 112) "poison")

  ;; Bump allocator; the post-return functions reset the heap after every call.
  (func $realloc (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $ret i32)
    (local.set $ret
      (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
               (i32.xor (i32.sub (local.get $align) (i32.const 1)) (i32.const -1))))
    (global.set $heap (i32.add (local.get $ret) (local.get $size)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq (memory.grow (i32.add (i32.div_u (i32.sub (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
                                                     (i32.const 65536)) (i32.const 1)))
                    (i32.const -1))
          (then unreachable))))
    (if (local.get $old_size) (then (memory.copy (local.get $ret) (local.get $old) (local.get $old_size))))
    (local.get $ret))
  (func (export "cabi_post_switchyard:component/handler@0.1.0#handle-message") (param i32)
    (global.set $heap (i32.const 4096)))
  (func (export "cabi_post_switchyard:component/handler@0.1.0#handle-callback") (param i32)
    (global.set $heap (i32.const 4096)))

  ;; result<option<list<u8>>, error> at 16: err(code, message), copied from a result<_, error>.
  (func $err_from (param $area i32) (result i32)
    (i32.store8 (i32.const 16) (i32.const 1))
    (i32.store8 (i32.const 20) (i32.load8_u (i32.add (local.get $area) (i32.const 4))))
    (i32.store (i32.const 24) (i32.load (i32.add (local.get $area) (i32.const 8))))
    (i32.store (i32.const 28) (i32.load (i32.add (local.get $area) (i32.const 12))))
    (i32.const 16))

  ;; handle-message(envelope*) -> result<option<list<u8>>, error>*
  ;; envelope: message-type u8 @0, payload @32/36, codec u64 @40.
  (func (export "switchyard:component/handler@0.1.0#handle-message") (param $env i32) (result i32)
    (local $src i32) (local $len i32) (local $out i32) (local $i i32) (local $b i32)
    (local.set $src (i32.load (i32.add (local.get $env) (i32.const 32))))
    (local.set $len (i32.load (i32.add (local.get $env) (i32.const 36))))
    ;; "poison" (6 bytes): abort.
    (if (i32.and (i32.eq (local.get $len) (i32.const 6))
                 (i32.and (i32.eq (i32.load (local.get $src)) (i32.load (i32.const 112)))
                          (i32.eq (i32.load16_u (i32.add (local.get $src) (i32.const 4))) (i32.load16_u (i32.const 116)))))
      (then unreachable))
    (local.set $out (call $realloc (i32.const 0) (i32.const 0) (i32.const 1) (local.get $len)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $b (i32.load8_u (i32.add (local.get $src) (local.get $i))))
        (if (i32.and (i32.ge_u (local.get $b) (i32.const 0x61)) (i32.le_u (local.get $b) (i32.const 0x7a)))
          (then (local.set $b (i32.sub (local.get $b) (i32.const 32)))))
        (i32.store8 (i32.add (local.get $out) (local.get $i)) (local.get $b))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $send (i32.const 96) (i32.const 5) (local.get $out) (local.get $len)
      (i64.load (i32.add (local.get $env) (i32.const 40))) (i32.const 240))
    (if (i32.load8_u (i32.const 240)) (then (return (call $err_from (i32.const 240)))))
    (i32.store8 (i32.const 16) (i32.const 0))
    (if (i32.eq (i32.load8_u (local.get $env)) (i32.const 1))
      (then
        ;; a request: ok(some(transformed record))
        (i32.store8 (i32.const 20) (i32.const 1))
        (i32.store (i32.const 24) (local.get $out))
        (i32.store (i32.const 28) (local.get $len)))
      (else (i32.store8 (i32.const 20) (i32.const 0))))
    (i32.const 16))

  ;; transform makes no requests: every callback is acknowledged.
  (func (export "switchyard:component/handler@0.1.0#handle-callback") (param i32) (result i32)
    (i32.store8 (i32.const 16) (i32.const 0))
    (i32.const 16))
)
