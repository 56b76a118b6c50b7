//! Spare strings: the short strings of a request (its method, and its
//! target, which also holds the host) are given back when the request is
//! dropped, and the next request made on the same thread takes them, so a
//! server answering request after request allocates none for them. The pool
//! is per thread and bounded in count and in the size of what it keeps; a
//! request dropped on another thread than its loop's leaves its strings to
//! that thread's pool, which is bounded the same way.

use std::cell::RefCell;

/// Most spare strings one thread keeps.
const SPARE_STRINGS: usize = 256;
/// Capacity a fresh string gets at least, so a reused one holds most
/// methods, paths and hosts without growing.
const FIRST_CAPACITY: usize = 32;
/// Largest capacity kept (a long target once is not held on to).
const KEPT_CAPACITY: usize = 256;

thread_local! {
    /// This thread's spare strings, all empty.
    static STRINGS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Each of `texts` as an owned string, in a spare string's storage when
/// there is one (the spares are looked up once for all of them).
pub(crate) fn strings_from<const N: usize>(texts: [&str; N]) -> [String; N] {
    let mut strings = [const { String::new() }; N];
    let pooled = STRINGS.try_with(|spare| fill(&mut strings, texts, &mut spare.borrow_mut()));
    if pooled.is_err() {
        fill(&mut strings, texts, &mut Vec::new()); // the thread is ending
    }
    strings
}

/// Copies each of `texts` into its slot of `strings` (a loop, not
/// `array::map`, whose generic machinery costs more than the copies).
fn fill<const N: usize>(strings: &mut [String; N], texts: [&str; N], spare: &mut Vec<String>) {
    for (string, text) in strings.iter_mut().zip(texts) {
        *string = copy_into(spare, text);
    }
}

/// `text` as an owned string: empty without storage, else in a string
/// popped from `spare` or a new one.
fn copy_into(spare: &mut Vec<String>, text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let mut string = spare
        .pop()
        .unwrap_or_else(|| String::with_capacity(text.len().max(FIRST_CAPACITY)));
    string.push_str(text);
    string
}

/// Gives the storage of `strings` to this thread's spares; empty or too
/// large storage, or any past the spares' bound, is freed.
pub(crate) fn give_back<const N: usize>(strings: [String; N]) {
    let _ = STRINGS.try_with(move |spare| {
        let mut spare = spare.borrow_mut();
        for mut string in strings {
            if (1..=KEPT_CAPACITY).contains(&string.capacity()) && spare.len() < SPARE_STRINGS {
                string.clear();
                spare.push(string);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_back_string_is_reused_empty() {
        let [first] = strings_from(["GET"]);
        let storage = first.as_ptr();
        give_back([first]);
        let [empty, second] = strings_from(["", "/path"]);
        assert_eq!((empty.as_str(), second.as_str()), ("", "/path"));
        assert_eq!(second.as_ptr(), storage, "the spare storage was taken");
    }

    /// Strings in this thread's spares.
    fn spares() -> usize {
        STRINGS.with(|spare| spare.borrow().len())
    }

    #[test]
    fn empty_and_large_strings_are_not_kept() {
        assert_eq!(strings_from([""])[0].capacity(), 0);
        give_back([String::new(), "x".repeat(KEPT_CAPACITY + 1)]);
        assert_eq!(spares(), 0);
        give_back(["x".repeat(KEPT_CAPACITY)]);
        assert_eq!(spares(), 1);
    }
}
