//! Text CIF: a tokenizer and block/category assembler following the CIF 1.1 syntax
//! (<https://www.iucr.org/resources/cif/spec/version1.1/cifsyntax>, §2.2) as the wwPDB uses it.
//!
//! Tokens: `data_NAME`, `loop_`, tags `_category.item`, and values: bare words, `'…'`/`"…"`
//! quoted strings (a quote closes only when followed by whitespace, so `'C5'-OH'` is one
//! value), and `;` text fields (a `;` at the start of a line opens and closes them). `#` outside a
//! value starts a comment. Unquoted `.` and `?` are the null values; quoted ones are strings.
//! Save frames, `global_` and `stop_` (dictionary files) are reported as unsupported.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use super::{Block, Category, Source, Span, Storage};
use crate::data::error::{DataError, Result};

/// Whitespace per CIF 1.1 (space, tab, newline, carriage return, vertical tab, form feed).
const fn whitespace_table() -> [bool; 256] {
    let mut t = [false; 256];
    t[b' ' as usize] = true;
    t[b'\t' as usize] = true;
    t[b'\n' as usize] = true;
    t[b'\r' as usize] = true;
    t[0x0b] = true;
    t[0x0c] = true;
    t
}
static WHITESPACE: [bool; 256] = whitespace_table();

fn is_ws(b: u8) -> bool {
    WHITESPACE[b as usize]
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Data(Range<usize>),
    Loop,
    Tag(Range<usize>),
    Value(Span),
    /// `save_…`, `global_`, `stop_`.
    Reserved(Range<usize>),
}

struct Lexer<'a> {
    bytes: &'a [u8],
    path: &'a Path,
    pos: usize,
    /// A token read ahead and handed back by the parser: (start offset, token).
    peeked: Option<(usize, Token)>,
}

impl<'a> Lexer<'a> {
    /// The next token and the offset where it starts (for line numbers in errors).
    fn next(&mut self) -> Result<Option<(usize, Token)>> {
        if let Some(t) = self.peeked.take() {
            return Ok(Some(t));
        }
        let b = self.bytes;
        loop {
            while self.pos < b.len() && is_ws(b[self.pos]) {
                self.pos += 1;
            }
            if self.pos < b.len() && b[self.pos] == b'#' {
                self.pos = memchr::memchr(b'\n', &b[self.pos..]).map_or(b.len(), |k| self.pos + k);
            } else {
                break;
            }
        }
        let start = self.pos;
        let Some(&first) = b.get(start) else {
            return Ok(None);
        };
        let at_line_start = start == 0 || b[start - 1] == b'\n' || b[start - 1] == b'\r';
        let token = match first {
            b';' if at_line_start => self.text_field(start)?,
            b'\'' | b'"' => self.quoted(start, first)?,
            _ => {
                while self.pos < b.len() && !is_ws(b[self.pos]) {
                    self.pos += 1;
                }
                classify(b, start..self.pos)
            }
        };
        Ok(Some((start, token)))
    }

    fn unread(&mut self, at: usize, token: Token) {
        self.peeked = Some((at, token));
    }

    fn quoted(&mut self, start: usize, quote: u8) -> Result<Token> {
        let b = self.bytes;
        let mut i = start + 1;
        loop {
            match memchr::memchr3(quote, b'\n', b'\r', &b[i..]) {
                Some(k) if b[i + k] == quote => {
                    let close = i + k;
                    if close + 1 == b.len() || is_ws(b[close + 1]) {
                        self.pos = close + 1;
                        return Ok(Token::Value(span(start + 1..close)));
                    }
                    i = close + 1;
                }
                found => {
                    let end = found.map_or(b.len(), |k| i + k);
                    return Err(DataError::UnterminatedQuote {
                        path: self.path.to_owned(),
                        line: line_at(b, start),
                        quote: quote as char,
                        got: shorten(&b[start..end]),
                    });
                }
            }
        }
    }

    /// `;` at a line start up to the next line starting with `;`. The value excludes both
    /// semicolons, the line break before the closing one, and a line break right after the
    /// opening one (the usual layout puts the text on the following lines).
    fn text_field(&mut self, start: usize) -> Result<Token> {
        let b = self.bytes;
        let Some(k) = memchr::memmem::find(&b[start + 1..], b"\n;") else {
            return Err(DataError::UnterminatedTextField { path: self.path.to_owned(), line: line_at(b, start) });
        };
        let close = start + 1 + k; // the '\n' before the closing ';'
        self.pos = close + 2;
        let mut value = start + 1..close;
        if b[value.clone()].ends_with(b"\r") {
            value.end -= 1;
        }
        if b[value.clone()].starts_with(b"\r\n") {
            value.start += 2;
        } else if b[value.clone()].starts_with(b"\n") {
            value.start += 1;
        }
        value.start = value.start.min(value.end);
        Ok(Token::Value(span(value)))
    }

    fn syntax(&self, at: usize, expected: &'static str, token: &Token) -> DataError {
        let got = match token {
            Token::Data(r) => format!("data_{}", String::from_utf8_lossy(&self.bytes[r.clone()])),
            Token::Loop => "loop_".into(),
            Token::Tag(r) | Token::Reserved(r) => shorten(&self.bytes[r.clone()]),
            Token::Value(s) => match s.null() {
                Some(_) => shorten(&self.bytes[at..at + 1]),
                None => format!("value {}", shorten(&self.bytes[s.start as usize..(s.start + s.len) as usize])),
            },
        };
        DataError::CifSyntax { path: self.path.to_owned(), line: line_at(self.bytes, at), expected, got }
    }
}

fn classify(b: &[u8], r: Range<usize>) -> Token {
    let word = &b[r.clone()];
    let starts = |prefix: &[u8]| word.len() >= prefix.len() && word[..prefix.len()].eq_ignore_ascii_case(prefix);
    match word[0] {
        b'_' => Token::Tag(r),
        b'.' if word.len() == 1 => Token::Value(Span::INAPPLICABLE),
        b'?' if word.len() == 1 => Token::Value(Span::UNKNOWN),
        b'l' | b'L' if word.eq_ignore_ascii_case(b"loop_") => Token::Loop,
        b'd' | b'D' if starts(b"data_") => Token::Data(r.start + 5..r.end),
        b's' | b'S' | b'g' | b'G' if starts(b"save_") || starts(b"stop_") || starts(b"global_") => Token::Reserved(r),
        _ => Token::Value(span(r)),
    }
}

fn span(r: Range<usize>) -> Span {
    // parse() rejects files of 4 GiB or more, so offsets fit.
    Span { start: r.start as u32, len: (r.end - r.start) as u32 }
}

fn line_at(bytes: &[u8], offset: usize) -> usize {
    memchr::memchr_iter(b'\n', &bytes[..offset.min(bytes.len())]).count() + 1
}

fn shorten(bytes: &[u8]) -> String {
    const SHOWN: usize = 60;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(SHOWN)]);
    if bytes.len() > SHOWN { format!("{text}…") } else { text.into_owned() }
}

/// Tokenises a whole text CIF file into blocks of categories.
pub(super) fn parse(source: &Arc<Source>) -> Result<Vec<Block>> {
    let bytes = source.bytes.as_slice();
    // The largest offset stored is bytes.len() itself, and u32::MAX - 1 is a null sentinel.
    if bytes.len() >= (u32::MAX - 1) as usize {
        return Err(DataError::FileTooLarge { path: source.path.clone(), size: bytes.len() });
    }
    // A UTF-8 byte order mark is not part of the first token.
    let start = if bytes.starts_with(b"\xef\xbb\xbf") { 3 } else { 0 };
    let mut lexer = Lexer { bytes, path: &source.path, pos: start, peeked: None };
    let mut blocks: Vec<Block> = Vec::new();
    // Per category of the current block: was it written as `_cat.item value` pairs (so that
    // further pairs extend it), rather than as a loop?
    let mut from_pairs: Vec<bool> = Vec::new();
    while let Some((at, token)) = lexer.next()? {
        match token {
            Token::Data(name) => {
                blocks.push(Block {
                    name: String::from_utf8_lossy(&bytes[name]).into_owned(),
                    categories: Vec::new(),
                    source: source.clone(),
                });
                from_pairs.clear();
            }
            Token::Loop | Token::Tag(_) if blocks.is_empty() => {
                return Err(lexer.syntax(at, "data_ before the first item", &token));
            }
            Token::Loop => {
                let block = blocks.last_mut().expect("blocks is not empty (checked above)");
                let category = read_loop(&mut lexer, source, &block.name, at)?;
                check_new(&lexer, block, &category.name, &category.column_names[0], at)?;
                block.categories.push(category);
                from_pairs.push(false);
            }
            Token::Tag(ref tag) => {
                let (category, column) = split_tag(&lexer, tag.clone(), at)?;
                let value = match lexer.next()? {
                    Some((_, Token::Value(v))) => v,
                    Some((vat, other)) => {
                        return Err(lexer.syntax(vat, "a value after the tag", &other));
                    }
                    None => {
                        return Err(lexer.syntax(at, "a value after the tag, not the end of the file", &token));
                    }
                };
                let block = blocks.last_mut().expect("blocks is not empty (checked above)");
                add_pair(&lexer, block, &mut from_pairs, category, column, value, at)?;
            }
            Token::Value(_) => {
                return Err(lexer.syntax(at, "a tag, loop_ or data_ before a value", &token));
            }
            Token::Reserved(_) => {
                return Err(lexer.syntax(
                    at,
                    "data_, loop_, a tag or a value (save frames, global_ and stop_ are not supported)",
                    &token,
                ));
            }
        }
    }
    Ok(blocks)
}

fn split_tag(lexer: &Lexer<'_>, tag: Range<usize>, at: usize) -> Result<(String, String)> {
    let text = String::from_utf8_lossy(&lexer.bytes[tag.start + 1..tag.end]);
    match text.split_once('.') {
        Some((category, column)) if !category.is_empty() && !column.is_empty() => Ok((category.into(), column.into())),
        _ => Err(lexer.syntax(at, "a tag of the form _category.item", &Token::Tag(tag))),
    }
}

fn read_loop(lexer: &mut Lexer<'_>, source: &Arc<Source>, block: &str, loop_at: usize) -> Result<Category> {
    let mut name = String::new();
    let mut column_names: Vec<String> = Vec::new();
    loop {
        match lexer.next()? {
            Some((at, Token::Tag(tag))) => {
                let (category, column) = split_tag(lexer, tag.clone(), at)?;
                if column_names.is_empty() {
                    name = category;
                } else if !category.eq_ignore_ascii_case(&name) {
                    return Err(lexer.syntax(at, "a tag of the loop's category", &Token::Tag(tag)));
                }
                if column_names.iter().any(|c| c.eq_ignore_ascii_case(&column)) {
                    return Err(DataError::DuplicateItem {
                        path: source.path.clone(),
                        line: line_at(lexer.bytes, at),
                        block: block.to_owned(),
                        category: name,
                        column,
                    });
                }
                column_names.push(column);
            }
            Some((at, token)) if column_names.is_empty() => {
                return Err(lexer.syntax(at, "a tag after loop_", &token));
            }
            Some((at, token)) => {
                lexer.unread(at, token);
                break;
            }
            None if column_names.is_empty() => {
                return Err(lexer.syntax(loop_at, "a tag after loop_", &Token::Loop));
            }
            None => break,
        }
    }
    let mut spans = Vec::new();
    while let Some((at, token)) = lexer.next()? {
        match token {
            Token::Value(v) => spans.push(v),
            other => {
                lexer.unread(at, other);
                break;
            }
        }
    }
    let columns = column_names.len();
    if !spans.len().is_multiple_of(columns) {
        return Err(DataError::LoopValueCount {
            path: source.path.clone(),
            line: line_at(lexer.bytes, loop_at),
            category: name,
            columns,
            values: spans.len(),
        });
    }
    Ok(Category {
        name,
        row_count: spans.len() / columns,
        column_names,
        source: source.clone(),
        storage: Storage::Text(spans),
    })
}

fn check_new(lexer: &Lexer<'_>, block: &Block, category: &str, column: &str, at: usize) -> Result<()> {
    if block.category(category).is_some() {
        return Err(DataError::DuplicateItem {
            path: lexer.path.to_owned(),
            line: line_at(lexer.bytes, at),
            block: block.name.clone(),
            category: category.to_owned(),
            column: column.to_owned(),
        });
    }
    Ok(())
}

fn add_pair(
    lexer: &Lexer<'_>,
    block: &mut Block,
    from_pairs: &mut Vec<bool>,
    category: String,
    column: String,
    value: Span,
    at: usize,
) -> Result<()> {
    // Pairs of one category are almost always consecutive: look at the newest category first.
    let found = block.categories.iter().rposition(|c| c.name.eq_ignore_ascii_case(&category));
    match found {
        Some(i) if from_pairs[i] && !block.categories[i].has_column(&column) => {
            let c = &mut block.categories[i];
            c.text_spans_mut().expect("the text reader makes text categories").push(value);
            c.column_names.push(column);
        }
        Some(_) => {
            return Err(DataError::DuplicateItem {
                path: lexer.path.to_owned(),
                line: line_at(lexer.bytes, at),
                block: block.name.clone(),
                category,
                column,
            });
        }
        None => {
            block.categories.push(Category {
                name: category,
                row_count: 1,
                column_names: vec![column],
                source: block.source.clone(),
                storage: Storage::Text(vec![value]),
            });
            from_pairs.push(true);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::CifFile;
    use super::*;

    fn parse_str(text: &str) -> Result<CifFile> {
        CifFile::from_bytes(text.as_bytes().to_vec(), Path::new("t.cif"))
    }

    fn strs(f: &CifFile, cat: &str, col: &str) -> Vec<Option<String>> {
        let c = f.blocks[0].category(cat).unwrap().column(col).unwrap();
        (0..c.len()).map(|r| c.as_str(r).unwrap().map(|s| s.into_owned())).collect()
    }

    #[test]
    fn tokens_quotes_text_fields_comments() {
        let text = "# header\ndata_1ABC\n_entry.id 1ABC # trailing comment\n_entry.title 'it''s \"x\"'\n\
            _entry.note\n;first line\nsecond # not a comment\n;\nloop_\n_atom.name\n_atom.alt\n\
            \"O5'\" .\n'C5'-OH' ?\nN#1 '.'\n";
        let f = parse_str(text).unwrap();
        assert_eq!(f.blocks[0].name(), "1ABC");
        assert_eq!(strs(&f, "entry", "id"), [Some("1ABC".into())]);
        assert_eq!(strs(&f, "entry", "title"), [Some("it''s \"x\"".into())]);
        assert_eq!(strs(&f, "entry", "note"), [Some("first line\nsecond # not a comment".into())]);
        assert_eq!(strs(&f, "atom", "name"), [Some("O5'".into()), Some("C5'-OH".into()), Some("N#1".into())]);
        assert_eq!(strs(&f, "atom", "alt"), [None, None, Some(".".into())]);
        let atom = f.blocks[0].category("atom").unwrap();
        assert_eq!(atom.column("alt").unwrap().null(1), Some(super::super::Null::Unknown));
    }

    #[test]
    fn several_blocks_crlf_and_bom() {
        let f = parse_str("\u{feff}data_A\r\n_x.v\r\n;\r\nabc\r\n;\r\ndata_B\n_x.v 2\n").unwrap();
        assert_eq!(f.blocks.len(), 2);
        assert_eq!(strs(&f, "x", "v"), [Some("abc".into())]);
    }

    #[test]
    fn errors_name_file_line_and_problem() {
        let cases = [
            ("data_a\n_x.v 'abc\n", "t.cif:2: unterminated '-quoted value 'abc"),
            ("data_a\n_x.v 'ab'c\n", "t.cif:2: unterminated '-quoted value 'ab'c"),
            ("data_a\n_x.v\n;abc\nno end\n", "t.cif:3: unterminated text field"),
            (
                "data_a\nloop_\n_x.a\n_x.b\n1 2 3\n",
                "t.cif:2: loop of _x has 3 values, expected a multiple of its 2 columns",
            ),
            ("data_a\nloop_\n_x.a\n_y.b\n1 2\n", "t.cif:4: expected a tag of the loop's category, got _y.b"),
            ("_x.v 1\n", "t.cif:1: expected data_ before the first item, got _x.v"),
            ("data_a\n_x.v\n", "t.cif:2: expected a value after the tag, not the end of the file"),
            ("data_a\n_x.v _x.w 1\n", "t.cif:2: expected a value after the tag, got _x.w"),
            ("data_a\n_x.v 1 2\n", "t.cif:2: expected a tag, loop_ or data_ before a value, got value 2"),
            ("data_a\nloop_\n1\n", "t.cif:3: expected a tag after loop_, got value 1"),
            ("data_a\n_xv 1\n", "t.cif:2: expected a tag of the form _category.item, got _xv"),
            ("data_a\nsave_foo\n", "t.cif:2: expected data_, loop_, a tag or a value"),
            ("data_a\nloop_\n_x.a\n1\nloop_\n_x.b\n2\n", "t.cif:5: _x.b appears twice in data block \"a\""),
        ];
        for (text, expected) in cases {
            let err = parse_str(text).unwrap_err().to_string();
            assert!(err.starts_with(expected), "input {text:?}\n expected {expected}\n got {err}");
        }
    }

    #[test]
    fn every_prefix_of_a_file_parses_or_errors() {
        let text = "data_a\nloop_\n_x.a\n_x.b\n'q 1' ;x\n;\nline\n;\n\"d\"\n_y.z 5\n";
        assert!(parse_str(text).is_ok());
        for n in 0..text.len() {
            let _ = parse_str(&text[..n]);
        }
    }
}
