;; store: keeps every record it receives in its storage namespace, under "record/" followed by
;; the record's number (8 bytes, big-endian, so keys sort in arrival order), and the number of
;; records under "count"; both in one atomic batch. A request is answered with the count, in
;; decimal. The data outlives the process: run the pipeline twice and the count carries on.
;;
;; A core module written by hand against the canonical ABI of wit/switchyard.wit; turn it into
;; a component with `switchyard component new store.wat -o store.wasm`.
;; Memory: return area at 16, import return areas at 240 and 256, constants and buffers below
;; 1024, heap from 4096.
(module
  (import "switchyard:component/storage@0.1.0" "get" (func $get (param i32 i32 i32)))
  (import "switchyard:component/storage@0.1.0" "batch" (func $batch (param i32 i32 i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 96) "count")
  ;; the record key: "record/" then 8 bytes of number at 311
  (data (i32.const 304) "record/")

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

  ;; The stored count (0 when absent); on a storage error, 0 with the error's result at 240.
  (func $count (result i64)
    (call $get (i32.const 96) (i32.const 5) (i32.const 240))
    (if (i32.load8_u (i32.const 240)) (then (return (i64.const 0))))
    (if (result i64)
        (i32.and (i32.load8_u (i32.const 244)) (i32.eq (i32.load (i32.const 252)) (i32.const 8)))
      (then (i64.load (i32.load (i32.const 248))))
      (else (i64.const 0))))

  ;; handle-message(envelope*) -> result<option<list<u8>>, error>*
  ;; envelope: message-type u8 @0, payload @32/36.
  (func (export "switchyard:component/handler@0.1.0#handle-message") (param $env i32) (result i32)
    (local $n i64) (local $p i32) (local $i i32)
    (local.set $n (call $count))
    (if (i32.load8_u (i32.const 240)) (then (return (call $err_from (i32.const 240)))))
    (if (i32.eq (i32.load8_u (local.get $env)) (i32.const 1))
      (then
        ;; a request: ok(some(decimal count)), digits written backwards ending at 448
        (local.set $p (i32.const 448))
        (loop $digit
          (local.set $p (i32.sub (local.get $p) (i32.const 1)))
          (i32.store8 (local.get $p) (i32.add (i32.const 0x30) (i32.wrap_i64 (i64.rem_u (local.get $n) (i64.const 10)))))
          (local.set $n (i64.div_u (local.get $n) (i64.const 10)))
          (br_if $digit (i64.ne (local.get $n) (i64.const 0))))
        (i32.store8 (i32.const 16) (i32.const 0))
        (i32.store8 (i32.const 20) (i32.const 1))
        (i32.store (i32.const 24) (local.get $p))
        (i32.store (i32.const 28) (i32.sub (i32.const 448) (local.get $p)))
        (return (i32.const 16))))
    ;; the record's key: "record/" + n as 8 big-endian bytes
    (block $done
      (loop $byte
        (br_if $done (i32.ge_u (local.get $i) (i32.const 8)))
        (i32.store8 (i32.sub (i32.const 318) (local.get $i))
          (i32.wrap_i64 (i64.shr_u (local.get $n) (i64.extend_i32_u (i32.mul (local.get $i) (i32.const 8))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $byte)))
    ;; the new count, little-endian, at 328
    (i64.store (i32.const 328) (i64.add (local.get $n) (i64.const 1)))
    ;; list<write> of two at 512, 20 bytes each: set(tuple<key, value>) is case 0, its
    ;; tuple at +4: key ptr/len, value ptr/len.
    (i32.store8 (i32.const 512) (i32.const 0))
    (i32.store (i32.const 516) (i32.const 304))
    (i32.store (i32.const 520) (i32.const 15))
    (i32.store (i32.const 524) (i32.load (i32.add (local.get $env) (i32.const 32))))
    (i32.store (i32.const 528) (i32.load (i32.add (local.get $env) (i32.const 36))))
    (i32.store8 (i32.const 532) (i32.const 0))
    (i32.store (i32.const 536) (i32.const 96))
    (i32.store (i32.const 540) (i32.const 5))
    (i32.store (i32.const 544) (i32.const 328))
    (i32.store (i32.const 548) (i32.const 8))
    (call $batch (i32.const 512) (i32.const 2) (i32.const 256))
    (if (i32.load8_u (i32.const 256)) (then (return (call $err_from (i32.const 256)))))
    (i32.store8 (i32.const 16) (i32.const 0))
    (i32.store8 (i32.const 20) (i32.const 0))
    (i32.const 16))

  ;; store makes no requests: every callback is acknowledged.
  (func (export "switchyard:component/handler@0.1.0#handle-callback") (param i32) (result i32)
    (i32.store8 (i32.const 16) (i32.const 0))
    (i32.const 16))
)
