//! The blog's store: entries in memory, newest first, found by slug. The
//! handlers share one through `Rc<RefCell<Store>>` — everything runs on the
//! loop's one thread, so no lock is needed (Tornado's blog demo keeps them
//! in MySQL).

use std::time::SystemTime;

use serde::Serialize;
use whirl::httpserver::format_timestamp;

/// One blog entry, as the templates see it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Its URL name, unique (`/entry/<slug>`).
    pub slug: String,
    /// The title, as written.
    pub title: String,
    /// Who wrote it.
    pub author: String,
    /// The text, split at blank lines.
    pub paragraphs: Vec<String>,
    /// When it was published, as an HTTP date.
    pub published: String,
}

/// Every entry, newest first.
#[derive(Debug, Default)]
pub struct Store {
    /// The entries, newest first.
    entries: Vec<Entry>,
}

impl Store {
    /// The entries, newest first.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry called `slug`.
    pub fn get(&self, slug: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.slug == slug)
    }

    /// Publishes an entry and returns its slug (made from the title, with
    /// `-2`, `-3`… when taken).
    pub fn add(&mut self, title: &str, author: &str, text: &str) -> String {
        let base = slugify(title);
        let mut slug = base.clone();
        for n in 2.. {
            if self.get(&slug).is_none() {
                break;
            }
            slug = format!("{base}-{n}");
        }
        let paragraphs = text
            .replace("\r\n", "\n")
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        self.entries.insert(
            0,
            Entry {
                slug: slug.clone(),
                title: title.to_string(),
                author: author.to_string(),
                paragraphs,
                published: format_timestamp(SystemTime::now()),
            },
        );
        slug
    }
}

/// `Rust & Tornado!` → `rust-tornado`; `entry` when nothing is left.
fn slugify(title: &str) -> String {
    let lower = title.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        "entry".to_string()
    } else {
        words.join("-")
    }
}
