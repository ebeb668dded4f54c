//! SQLCipher's page encryption (AES-256-CBC) and page HMAC (SHA-256 / SHA-512) computed with
//! the RustCrypto crates instead of SQLCipher's OpenSSL 3 provider, and the random bytes of each
//! written page's IV drawn from a per-thread ChaCha20 generator seeded by the operating system.
//!
//! Why: for every page read or written, that provider fetches the HMAC and cipher
//! implementations by name and allocates and frees their contexts, which costs more than
//! hashing and encrypting the 4 KiB page itself; it was most of what encryption adds to a save.
//! Here a page is one HMAC and one CBC pass, with no allocation. OpenSSL's random generator
//! took 0.6 µs for each page's 48 bytes (a lock and a DRBG step), twice what the system call
//! costs; the ChaCha20 stream takes 0.03 µs ([`IvRng`]).
//!
//! Invariants: the algorithms are the same, so the bytes are the same: files written either
//! way read either way (a known-answer test checks both functions against OpenSSL's). Only
//! AES-256-CBC with a 32-byte key and HMAC-SHA256/512 are taken over; anything else (SHA-1
//! HMACs, the key derivation) is passed to the OpenSSL provider unchanged. Random bytes come
//! from OpenSSL whenever the ChaCha20 generator cannot be seeded.
//! [`install`] registers the provider once per process, before the first key is set.

use std::ffi::{c_char, c_int, c_void};
use std::sync::{Once, OnceLock};

use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use hmac::{KeyInit, Mac};

const SQLITE_OK: c_int = 0;
const SQLITE_ERROR: c_int = 1;
const SQLCIPHER_ENCRYPT: c_int = 1;
const SQLCIPHER_DECRYPT: c_int = 0;
const SQLCIPHER_HMAC_SHA256: c_int = 1;
const SQLCIPHER_HMAC_SHA512: c_int = 2;

type HmacFn = unsafe extern "C" fn(
    ctx: *mut c_void,
    algorithm: c_int,
    key: *const u8,
    key_sz: c_int,
    input: *const u8,
    in_sz: c_int,
    in2: *const u8,
    in2_sz: c_int,
    out: *mut u8,
) -> c_int;

type CipherFn = unsafe extern "C" fn(
    ctx: *mut c_void,
    mode: c_int,
    key: *const u8,
    key_sz: c_int,
    iv: *const u8,
    input: *const u8,
    in_sz: c_int,
    out: *mut u8,
) -> c_int;

type KdfFn = unsafe extern "C" fn(
    ctx: *mut c_void,
    algorithm: c_int,
    pass: *const u8,
    pass_sz: c_int,
    salt: *const u8,
    salt_sz: c_int,
    workfactor: c_int,
    key_sz: c_int,
    key: *mut u8,
) -> c_int;

/// `struct sqlcipher_provider` of SQLCipher 4 (`sqlcipher.h`), field for field.
#[repr(C)]
#[derive(Clone, Copy)]
struct Provider {
    init: Option<unsafe extern "C" fn() -> c_int>,
    shutdown: Option<unsafe extern "C" fn()>,
    get_provider_name: Option<unsafe extern "C" fn(*mut c_void) -> *const c_char>,
    add_random: Option<unsafe extern "C" fn(*mut c_void, *const c_void, c_int) -> c_int>,
    random: Option<unsafe extern "C" fn(*mut c_void, *mut c_void, c_int) -> c_int>,
    hmac: Option<HmacFn>,
    kdf: Option<KdfFn>,
    cipher: Option<CipherFn>,
    get_cipher: Option<unsafe extern "C" fn(*mut c_void) -> *const c_char>,
    get_key_sz: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
    get_iv_sz: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
    get_block_sz: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
    get_hmac_sz: Option<unsafe extern "C" fn(*mut c_void, c_int) -> c_int>,
    ctx_init: Option<unsafe extern "C" fn(*mut *mut c_void) -> c_int>,
    ctx_free: Option<unsafe extern "C" fn(*mut *mut c_void) -> c_int>,
    fips_status: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
    get_provider_version: Option<unsafe extern "C" fn(*mut c_void) -> *const c_char>,
    next: *mut Provider,
}

unsafe extern "C" {
    fn sqlcipher_get_provider() -> *mut Provider;
    fn sqlcipher_register_provider(p: *mut Provider) -> c_int;
    fn sqlcipher_malloc(size: u64) -> *mut c_void;
}

type RandomFn = unsafe extern "C" fn(*mut c_void, *mut c_void, c_int) -> c_int;

/// The OpenSSL provider's functions, for what is not taken over.
static OPENSSL: OnceLock<(HmacFn, CipherFn, RandomFn)> = OnceLock::new();

/// Registers the provider (once per process). Call before `PRAGMA key`; connections keyed
/// before keep the OpenSSL provider, which reads and writes the same bytes.
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: SQLCipher registers its OpenSSL provider while SQLite initialises, so SQLite
        // is initialised first (a no-op once done): before that there is no provider to copy, and
        // this one chance to install would be lost. SQLCipher documents `sqlcipher_get_provider`
        // as the way to take the current provider and register a changed copy. The copy lives in
        // SQLCipher's own heap: it stays until SQLCipher shuts down, which frees it with the
        // providers it registered itself; registration happens under SQLCipher's mutex.
        unsafe {
            if rusqlite::ffi::sqlite3_initialize() != rusqlite::ffi::SQLITE_OK {
                return;
            }
            let current = sqlcipher_get_provider();
            if current.is_null() {
                return;
            }
            let mut p = *current;
            let (Some(hmac), Some(cipher), Some(random)) = (p.hmac, p.cipher, p.random) else {
                return;
            };
            if OPENSSL.set((hmac, cipher, random)).is_err() {
                return;
            }
            p.hmac = Some(page_hmac);
            p.cipher = Some(page_cipher);
            p.random = Some(page_random);
            p.get_provider_name = Some(provider_name);
            p.next = std::ptr::null_mut();
            let copy = sqlcipher_malloc(std::mem::size_of::<Provider>() as u64) as *mut Provider;
            if copy.is_null() {
                return;
            }
            copy.write(p);
            let _ = sqlcipher_register_provider(copy);
        }
    });
}

/// What `PRAGMA cipher_provider` reports.
const NAME: &std::ffi::CStr = c"rustcrypto pages (openssl: key derivation)";

unsafe extern "C" fn provider_name(_ctx: *mut c_void) -> *const c_char {
    NAME.as_ptr()
}

fn hmac_into<M: Mac + KeyInit>(key: &[u8], parts: [&[u8]; 2], out: &mut [u8]) -> bool {
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
        return false;
    };
    for part in parts {
        mac.update(part);
    }
    let tag = mac.finalize().into_bytes();
    if out.len() != tag.len() {
        return false;
    }
    out.copy_from_slice(&tag);
    true
}

/// HMAC-SHA256 / HMAC-SHA512 of `in || in2`; other algorithms go to OpenSSL.
unsafe extern "C" fn page_hmac(
    ctx: *mut c_void,
    algorithm: c_int,
    key: *const u8,
    key_sz: c_int,
    input: *const u8,
    in_sz: c_int,
    in2: *const u8,
    in2_sz: c_int,
    out: *mut u8,
) -> c_int {
    let size = match algorithm {
        SQLCIPHER_HMAC_SHA256 => 32,
        SQLCIPHER_HMAC_SHA512 => 64,
        _ => 0,
    };
    if size == 0 || key.is_null() || input.is_null() || out.is_null() || key_sz < 0 || in_sz < 0 {
        return match OPENSSL.get() {
            // SAFETY: the same arguments SQLCipher gave us, to the function it would have called.
            Some((hmac, _, _)) => unsafe {
                hmac(ctx, algorithm, key, key_sz, input, in_sz, in2, in2_sz, out)
            },
            None => SQLITE_ERROR,
        };
    }
    // SAFETY: SQLCipher passes buffers of the stated sizes and an output of the algorithm's
    // HMAC size (`get_hmac_sz`).
    let (key, first, second, out) = unsafe {
        (
            std::slice::from_raw_parts(key, key_sz as usize),
            std::slice::from_raw_parts(input, in_sz as usize),
            if in2.is_null() || in2_sz <= 0 {
                &[][..]
            } else {
                std::slice::from_raw_parts(in2, in2_sz as usize)
            },
            std::slice::from_raw_parts_mut(out, size),
        )
    };
    let ok = match algorithm {
        SQLCIPHER_HMAC_SHA256 => hmac_into::<hmac::Hmac<sha2::Sha256>>(key, [first, second], out),
        _ => hmac_into::<hmac::Hmac<sha2::Sha512>>(key, [first, second], out),
    };
    if ok { SQLITE_OK } else { SQLITE_ERROR }
}

/// AES-256-CBC without padding (pages are whole blocks); anything else goes to OpenSSL.
unsafe extern "C" fn page_cipher(
    ctx: *mut c_void,
    mode: c_int,
    key: *const u8,
    key_sz: c_int,
    iv: *const u8,
    input: *const u8,
    in_sz: c_int,
    out: *mut u8,
) -> c_int {
    let whole_blocks = in_sz > 0 && in_sz % 16 == 0;
    let same = std::ptr::eq(input, out);
    let (a, b, n) = (input as usize, out as usize, in_sz.max(0) as usize);
    let overlapping = !same && a < b.saturating_add(n) && b < a.saturating_add(n);
    let known_mode = mode == SQLCIPHER_ENCRYPT || mode == SQLCIPHER_DECRYPT;
    if key_sz != 32
        || !whole_blocks
        || !known_mode
        || overlapping
        || key.is_null()
        || iv.is_null()
        || input.is_null()
        || out.is_null()
    {
        return match OPENSSL.get() {
            // SAFETY: the same arguments SQLCipher gave us, to the function it would have called.
            Some((_, cipher, _)) => unsafe {
                cipher(ctx, mode, key, key_sz, iv, input, in_sz, out)
            },
            None => SQLITE_ERROR,
        };
    }
    let len = in_sz as usize;
    // SAFETY: SQLCipher passes a 32-byte key, a 16-byte IV and input and output buffers of
    // `in_sz` bytes each: the same buffer, or two that do not overlap (checked above).
    let (key, iv, out_buf) = unsafe {
        (
            &*(key as *const [u8; 32]),
            &*(iv as *const [u8; 16]),
            std::slice::from_raw_parts_mut(out, len),
        )
    };
    if !same {
        // SAFETY: as above; `input` is not `out`.
        let input = unsafe { std::slice::from_raw_parts(input, len) };
        out_buf.copy_from_slice(input);
    }
    let (blocks, rest) =
        aes::cipher::array::Array::<u8, aes::cipher::consts::U16>::slice_as_chunks_mut(out_buf);
    if !rest.is_empty() {
        return SQLITE_ERROR;
    }
    if mode == SQLCIPHER_ENCRYPT {
        cbc::Encryptor::<aes::Aes256>::new(key.into(), iv.into()).encrypt_blocks(blocks);
    } else {
        cbc::Decryptor::<aes::Aes256>::new(key.into(), iv.into()).decrypt_blocks(blocks);
    }
    SQLITE_OK
}

/// Random bytes for IVs: a ChaCha20 stream per thread, seeded from the operating system
/// (`getrandom`), seeded again after [`IvRng::RESEED_BYTES`] bytes and whenever the process id
/// changed (a forked child must not repeat its parent's IVs).
struct IvRng {
    stream: chacha20::ChaCha20Rng,
    pid: u32,
    left: usize,
}

impl IvRng {
    /// Bytes drawn between two seeds from the system (about 20,000 pages).
    const RESEED_BYTES: usize = 1 << 20;

    fn seeded() -> Option<IvRng> {
        use rand_core::SeedableRng;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).ok()?;
        let stream = chacha20::ChaCha20Rng::from_seed(seed);
        zeroize::Zeroize::zeroize(&mut seed);
        Some(IvRng {
            stream,
            pid: std::process::id(),
            left: Self::RESEED_BYTES,
        })
    }

    /// Fills `out`; `false` when the system could not seed a new stream.
    fn fill(slot: &mut Option<IvRng>, out: &mut [u8]) -> bool {
        let stale = slot
            .as_ref()
            .is_none_or(|r| r.left < out.len() || r.pid != std::process::id());
        if stale {
            *slot = IvRng::seeded();
        }
        let Some(rng) = slot.as_mut() else {
            return false;
        };
        rand_core::Rng::fill_bytes(&mut rng.stream, out);
        // A request larger than the budget (SQLCipher's are at most a page's reserve) is served
        // from the fresh stream and leaves it spent.
        rng.left = rng.left.saturating_sub(out.len());
        true
    }
}

thread_local! {
    static IV_RNG: std::cell::RefCell<Option<IvRng>> = const { std::cell::RefCell::new(None) };
}

/// SQLCipher's `random`: fills `n` bytes at `buf` (a written page's reserve, or a new salt).
unsafe extern "C" fn page_random(ctx: *mut c_void, buf: *mut c_void, n: c_int) -> c_int {
    if !buf.is_null() && n >= 0 {
        // SAFETY: SQLCipher passes a writable buffer of `n` bytes.
        let out = unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, n as usize) };
        let filled = IV_RNG
            .try_with(|cell| {
                cell.try_borrow_mut()
                    .is_ok_and(|mut slot| IvRng::fill(&mut slot, out))
            })
            .unwrap_or(false);
        if filled {
            return SQLITE_OK;
        }
    }
    match OPENSSL.get() {
        // SAFETY: the same arguments SQLCipher gave us, to the function it would have called.
        Some((_, _, random)) => unsafe { random(ctx, buf, n) },
        None => SQLITE_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Page-sized input through our functions and through OpenSSL's (the provider SQLCipher
    /// registered): the same bytes for every algorithm we take over.
    #[test]
    fn page_hmac_and_cipher_match_openssl() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        install();
        conn.execute_batch(&crate::keyring::StoreKey::generate().unwrap().pragmas())
            .unwrap();
        let name: String = conn
            .query_row("PRAGMA cipher_provider", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            name,
            NAME.to_str().unwrap(),
            "a keyed connection uses this provider"
        );
        let (openssl_hmac, openssl_cipher, _) = *OPENSSL.get().expect("installed");
        let key: Vec<u8> = (0u8..32)
            .map(|i| i.wrapping_mul(7).wrapping_add(3))
            .collect();
        let iv: Vec<u8> = (0u8..16).map(|i| i.wrapping_mul(11)).collect();
        let page: Vec<u8> = (0..4080u32).map(|i| (i * 31 % 251) as u8).collect();
        let pgno = 7u32.to_le_bytes();
        for (algorithm, size) in [(SQLCIPHER_HMAC_SHA256, 32), (SQLCIPHER_HMAC_SHA512, 64)] {
            let (mut ours, mut theirs) = (vec![0u8; size], vec![0u8; size]);
            let call = |f: HmacFn, out: &mut [u8]| unsafe {
                f(
                    std::ptr::null_mut(),
                    algorithm,
                    key.as_ptr(),
                    32,
                    page.as_ptr(),
                    page.len() as c_int,
                    pgno.as_ptr(),
                    4,
                    out.as_mut_ptr(),
                )
            };
            assert_eq!(call(page_hmac, &mut ours), SQLITE_OK);
            assert_eq!(call(openssl_hmac, &mut theirs), SQLITE_OK);
            assert_eq!(ours, theirs, "HMAC algorithm {algorithm}");
        }
        let mut encrypted = [vec![0u8; page.len()], vec![0u8; page.len()]];
        for (i, f) in [page_cipher as CipherFn, openssl_cipher]
            .into_iter()
            .enumerate()
        {
            let rc = unsafe {
                f(
                    std::ptr::null_mut(),
                    SQLCIPHER_ENCRYPT,
                    key.as_ptr(),
                    32,
                    iv.as_ptr(),
                    page.as_ptr(),
                    page.len() as c_int,
                    encrypted[i].as_mut_ptr(),
                )
            };
            assert_eq!(rc, SQLITE_OK);
        }
        assert_eq!(encrypted[0], encrypted[1], "AES-256-CBC encryption");
        assert_ne!(encrypted[0], page);
        let mut back = vec![0u8; page.len()];
        let rc = unsafe {
            page_cipher(
                std::ptr::null_mut(),
                SQLCIPHER_DECRYPT,
                key.as_ptr(),
                32,
                iv.as_ptr(),
                encrypted[1].as_ptr(),
                page.len() as c_int,
                back.as_mut_ptr(),
            )
        };
        assert_eq!(rc, SQLITE_OK);
        assert_eq!(back, page, "what OpenSSL encrypted, we decrypt");
    }

    /// The IV bytes SQLCipher asks for: every byte written, never the same twice, and a new
    /// stream once the budget is spent or the process id differs (as after a fork).
    #[test]
    fn page_random_fills_fresh_bytes_and_reseeds() {
        install();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let mut reserve = [0u8; 48];
            let rc = unsafe { page_random(std::ptr::null_mut(), reserve.as_mut_ptr().cast(), 48) };
            assert_eq!(rc, SQLITE_OK);
            assert!(seen.insert(reserve), "an IV repeated");
        }
        let mut slot = IvRng::seeded();
        let mut first = [0u8; 32];
        assert!(IvRng::fill(&mut slot, &mut first));
        let left = slot.as_ref().map(|r| r.left);
        assert_eq!(left, Some(IvRng::RESEED_BYTES - 32));
        // A stream seeded in another process (a different pid) is replaced, not continued.
        if let Some(r) = slot.as_mut() {
            r.pid = r.pid.wrapping_add(1);
        }
        let mut second = [0u8; 32];
        assert!(IvRng::fill(&mut slot, &mut second));
        assert_eq!(
            slot.as_ref().map(|r| (r.pid, r.left)),
            Some((std::process::id(), IvRng::RESEED_BYTES - 32))
        );
        // So is a stream whose budget is spent.
        if let Some(r) = slot.as_mut() {
            r.left = 10;
        }
        let mut third = [0u8; 32];
        assert!(IvRng::fill(&mut slot, &mut third));
        assert_eq!(
            slot.as_ref().map(|r| r.left),
            Some(IvRng::RESEED_BYTES - 32)
        );
        assert!(first != second && second != third && first != third);
    }
}
