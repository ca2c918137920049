//! The loader: XML text to [`Policy`](crate::model::Policy).
//!
//! roxmltree gives a read-only tree with byte positions for every element
//! and attribute, which is what located errors need. On top of it this
//! module keeps a small context ([`Ctx`]) with the files read so far, the
//! diagnostics and the chain of files being included, and offers helpers
//! that read one attribute each and report anything wrong with it right
//! there. Element handlers (`system.rs`, `hardware.rs`) are written as
//! "check the attribute set, read each attribute, walk the children"; they
//! never stop at the first error, and missing values become placeholders so
//! the walk continues and every problem is reported in one run.
//!
//! Limits keep hostile input cheap: files over [`MAX_INPUT_BYTES`] are not
//! read, nor files past [`MAX_POLICY_BYTES`] or [`MAX_FILES`] for the whole
//! policy; a linear lexical scan ([`prescan`]) rejects, before roxmltree
//! sees the text, a DTD, nesting deeper than [`MAX_NESTING`] (roxmltree
//! recurses per level) and elements with more than [`MAX_ATTRIBUTES`]
//! attributes or files with more than [`MAX_NAMESPACE_DECLARATIONS`]
//! namespace declarations (roxmltree's duplicate checks are quadratic in
//! both). Include chains stop at [`MAX_INCLUDE_DEPTH`]. What is left is
//! linear or `n log n` in the input. Includes are spliced where they stand,
//! so the model sees one document in document order.

mod anchor;
mod hardware;
pub(crate) mod number;
mod resolve;
mod system;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use roxmltree::{Document, Node, ParsingOptions};

use crate::diag::{Diagnostic, Diagnostics};
use crate::files::{FileSource, ReadError, normalize};
use crate::model::Spanned;
use crate::parse_rules as ids;
use crate::source::{FileId, LineCol, SourceMap, Span};
use crate::{
    Loaded, MAX_ATTRIBUTES, MAX_FILES, MAX_INCLUDE_DEPTH, MAX_INPUT_BYTES, MAX_LOAD_DIAGNOSTICS,
    MAX_NAMESPACE_DECLARATIONS, MAX_NESTING, MAX_POLICY_BYTES,
};

use number::{NumberError, is_valid_name, parse_bool, parse_u64};

/// Loads the policy at `path`.
pub(crate) fn load(path: &Path, files: &dyn FileSource) -> Loaded {
    load_root(path, files, "system", "a policy", |ctx, root| {
        let mut policy = system::system(ctx, root, path);
        resolve::resolve(&mut policy, &mut ctx.diags);
        Some(policy)
    })
}

/// Loads a hardware description alone (`septum validate --hardware`): the
/// same limits and loader checks, root `<hardware>`, and a model whose only
/// content is the machine (no subjects, no plan) for the hardware rules.
pub(crate) fn load_hardware(path: &Path, files: &dyn FileSource) -> Loaded {
    load_root(
        path,
        files,
        "hardware",
        "a hardware description",
        |ctx, root| {
            ctx.attributes(root, &[]);
            let hardware = hardware::hardware(ctx, root);
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
            Some(crate::model::Policy {
                root_file: root.file,
                span: root.span(),
                name: Spanned::new(stem.unwrap_or_default(), root.span()),
                hardware,
                kernel: crate::model::Kernel::default(),
                regions: Vec::new(),
                events: Vec::new(),
                channels: Vec::new(),
                subjects: Vec::new(),
                scheduling: crate::model::Scheduling::default(),
                flow_denials: Vec::new(),
                device_domains: Vec::new(),
            })
        },
    )
}

/// What both loaders share: open `path` under the input limits, parse it,
/// require the root element `root_name` (a located error naming `what`
/// otherwise), and build the model from the root with `build`.
fn load_root(
    path: &Path,
    files: &dyn FileSource,
    root_name: &str,
    what: &str,
    build: impl FnOnce(&mut Ctx<'_>, El<'_, '_>) -> Option<crate::model::Policy>,
) -> Loaded {
    let mut ctx = Ctx {
        files,
        sources: SourceMap::new(),
        diags: Diagnostics::new(),
        include_stack: vec![(files.identity(path), None)],
        bytes_read: 0,
        gave_up: false,
    };
    let shown = path.display().to_string();
    let policy = ctx
        .open(path, &shown, None, ids::FILE_UNREADABLE)
        .and_then(|(file, text)| {
            let doc = ctx.parse_doc(file, &text)?;
            let root = El {
                node: doc.root_element(),
                file,
            };
            if root.name() != root_name {
                ctx.diags.error(
                    ids::INVALID_ROOT,
                    root.span(),
                    format!(
                        "the root element of {what} must be <{root_name}>, not <{}>",
                        quoted(root.name())
                    ),
                );
                return None;
            }
            build(&mut ctx, root)
        });
    Loaded {
        sources: ctx.sources,
        policy,
        diagnostics: ctx.diags,
        rules_run: false,
    }
}

/// An element and the file it is in.
#[derive(Clone, Copy)]
pub(crate) struct El<'a, 'input> {
    node: Node<'a, 'input>,
    file: FileId,
}

impl<'a, 'input> El<'a, 'input> {
    /// Local tag name.
    fn name(&self) -> &'a str {
        self.node.tag_name().name()
    }

    /// The tag name as written, with any namespace prefix.
    fn qualified_name(&self) -> &'input str {
        let span = self.span();
        let text = self.node.document().input_text();
        text.get(span.start as usize + 1..span.end as usize)
            .unwrap_or("")
    }

    /// The start tag's `<name`: where errors about the element point.
    fn span(&self) -> Span {
        let start = self.node.range().start;
        let text = self.node.document().input_text();
        let len = text
            .get(start + 1..)
            .and_then(|rest| rest.find(|c: char| c.is_whitespace() || c == '/' || c == '>'))
            .unwrap_or(0);
        Span::new(self.file, start..start + 1 + len)
    }

    /// A span inside this element's file.
    fn span_of(&self, range: std::ops::Range<usize>) -> Span {
        Span::new(self.file, range)
    }

    /// Trimmed text content and its span, if there is any non-blank text.
    fn text(&self) -> Option<Spanned<String>> {
        let node = self.node.children().find(|c| c.is_text())?;
        let raw = node.text()?;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return None;
        }
        let range = node.range();
        // Entity references make the text differ from the source; then the
        // whole text node is the span.
        let source = self
            .node
            .document()
            .input_text()
            .get(range.clone())
            .unwrap_or("");
        let span = match source.find(trimmed) {
            Some(at) => self.span_of(range.start + at..range.start + at + trimmed.len()),
            None => self.span_of(range),
        };
        Some(Spanned::new(trimmed.to_owned(), span))
    }
}

/// Integer types attributes are read into, with their maximum for messages.
pub(crate) trait Bounded: TryFrom<u64> + Copy {
    /// Largest value.
    const MAX: u64;
}

impl Bounded for u8 {
    const MAX: u64 = u8::MAX as u64;
}
impl Bounded for u16 {
    const MAX: u64 = u16::MAX as u64;
}
impl Bounded for u32 {
    const MAX: u64 = u32::MAX as u64;
}
impl Bounded for u64 {
    const MAX: u64 = u64::MAX;
}

/// A child handler: called for every child element, with includes already
/// spliced in.
pub(crate) type ChildFn<'h, 'f> = dyn FnMut(&mut Ctx<'f>, El<'_, '_>) + 'h;

/// Loader state.
pub(crate) struct Ctx<'f> {
    files: &'f dyn FileSource,
    sources: SourceMap,
    diags: Diagnostics,
    /// Identities of the files being read, outermost first, with the
    /// `href` that included each (none for the root).
    include_stack: Vec<(PathBuf, Option<Span>)>,
    /// Bytes of every file read so far (for [`MAX_POLICY_BYTES`]).
    bytes_read: u64,
    /// Whether [`MAX_LOAD_DIAGNOSTICS`] was reached and reported.
    gave_up: bool,
}

impl<'f> Ctx<'f> {
    // ------------------------------------------------------------- files

    /// Reads `display`; on failure reports with `rule` at `site` (or at the
    /// start of the file for the root) and returns `None`.
    /// Messages name the file as `shown` (the `href` as written, or the
    /// root path as given).
    fn open(
        &mut self,
        display: &Path,
        shown: &str,
        site: Option<Span>,
        rule: &'static str,
    ) -> Option<(FileId, Arc<str>)> {
        let shown = &quoted(shown);
        if self.sources.files().len() >= MAX_FILES {
            let span = site.unwrap_or_else(|| Span::file_start(FileId(0)));
            self.diags.error(
                ids::INCLUDE_TOO_MANY,
                span,
                format!(
                    "`{shown}` is not read: this policy already has {MAX_FILES} files, the limit"
                ),
            );
            return None;
        }
        let budget = MAX_POLICY_BYTES.saturating_sub(self.bytes_read);
        match self.files.read(display, MAX_INPUT_BYTES.min(budget)) {
            Ok(text) => {
                self.bytes_read += text.len() as u64;
                let file = self.sources.add(display, text);
                Some((file, self.sources.file(file).shared_text()))
            }
            Err(error) => {
                let (rule, message, at) = match error {
                    ReadError::NotFound => {
                        (rule, format!("cannot read `{shown}`: file not found"), None)
                    }
                    ReadError::Other(why) => (rule, format!("cannot read `{shown}`: {why}"), None),
                    ReadError::TooLarge(size) if size > MAX_INPUT_BYTES => (
                        ids::INPUT_TOO_LARGE,
                        format!(
                            "`{shown}` is {size} bytes, more than the limit of {MAX_INPUT_BYTES} \
                             bytes"
                        ),
                        None,
                    ),
                    ReadError::TooLarge(size) => (
                        ids::INPUT_TOO_LARGE,
                        format!(
                            "`{shown}` ({size} bytes) would bring this policy's files to more \
                             than {MAX_POLICY_BYTES} bytes together ({} read before it)",
                            self.bytes_read
                        ),
                        None,
                    ),
                    ReadError::NotUtf8(offset, lossy) => {
                        let file = self.sources.add(display, lossy);
                        let text = self.sources.file(file).text();
                        // Offsets shift where invalid bytes became U+FFFD;
                        // the first invalid byte is still at `offset`.
                        let offset = offset.min(text.len());
                        (
                            ids::XML_SYNTAX,
                            format!("`{shown}` is not valid UTF-8"),
                            Some(Span::new(file, offset..offset)),
                        )
                    }
                };
                let span = at.or(site).unwrap_or_else(|| {
                    let file = self.sources.add(display, "");
                    Span::file_start(file)
                });
                self.diags.error(rule, span, message);
                None
            }
        }
    }

    /// Parses `text` (file `file`) after the [`prescan`] limits.
    fn parse_doc<'t>(&mut self, file: FileId, text: &'t str) -> Option<Document<'t>> {
        if let Some(problem) = prescan(text) {
            let diagnostic = match problem {
                Prescan::Doctype(range) => Diagnostic::error(
                    ids::XML_SYNTAX,
                    Span::new(file, range),
                    "a document type declaration (DTD) is not accepted",
                )
                .with_help(
                    "remove the <!DOCTYPE ...>: policies are plain XML, without DTDs or entity \
                     definitions",
                ),
                Prescan::TooDeep(range) => Diagnostic::error(
                    ids::NESTING_TOO_DEEP,
                    Span::new(file, range),
                    format!("elements are nested more than {MAX_NESTING} levels deep"),
                ),
                Prescan::TooManyAttributes { element, attribute } => Diagnostic::error(
                    ids::ATTRIBUTES_TOO_MANY,
                    Span::new(file, attribute),
                    format!(
                        "{}> has more than {MAX_ATTRIBUTES} attributes",
                        text.get(element.clone()).unwrap_or("<")
                    ),
                )
                .with_label(Span::new(file, element), "this element"),
                Prescan::TooManyNamespaces(range) => Diagnostic::error(
                    ids::ATTRIBUTES_TOO_MANY,
                    Span::new(file, range),
                    format!(
                        "the file declares more than {MAX_NAMESPACE_DECLARATIONS} XML namespaces"
                    ),
                ),
            };
            self.diags.push(diagnostic);
            return None;
        }
        let options = ParsingOptions {
            allow_dtd: false,
            ..ParsingOptions::default()
        };
        let doc = match Document::parse_with_options(text, options) {
            Ok(doc) => doc,
            Err(error) => {
                let source = self.sources.file(file);
                let offset = match error {
                    roxmltree::Error::UnclosedRootNode => text.len() as u32,
                    _ => {
                        let pos = error.pos();
                        source.offset_of(LineCol {
                            line: pos.row,
                            column: pos.col,
                        })
                    }
                };
                let message = without_positions(&error.to_string());
                self.diags.error(
                    ids::XML_SYNTAX,
                    Span::new(file, offset as usize..offset as usize),
                    format!("malformed XML: {message}"),
                );
                return None;
            }
        };
        // The handlers recurse along the tree, so depth is bounded before
        // any of them runs (computed iteratively, parents come first).
        let mut depths = vec![0usize; doc.descendants().count() + 1];
        for node in doc.descendants().filter(|n| n.is_element()) {
            let parent = node
                .parent()
                .map_or(0, |p| depths.get(p.id().get_usize()).copied().unwrap_or(0));
            let depth = parent + 1;
            if let Some(slot) = depths.get_mut(node.id().get_usize()) {
                *slot = depth;
            }
            if depth > MAX_NESTING {
                let el = El { node, file };
                self.diags.error(
                    ids::NESTING_TOO_DEEP,
                    el.span(),
                    format!("elements are nested more than {MAX_NESTING} levels deep"),
                );
                return None;
            }
        }
        Some(doc)
    }

    /// Directory holding file `file`, for resolving `href`s.
    fn base_dir(&self, file: FileId) -> PathBuf {
        self.sources
            .path(file)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// Resolves `href` against the directory of the file holding it.
    fn resolve_href(&self, file: FileId, href: &str) -> PathBuf {
        normalize(&self.base_dir(file).join(href))
    }

    // ---------------------------------------------------------- children

    /// Calls `handle` for every child element of `el`, splicing in the
    /// children of included files where `<include>` stands (when
    /// `allow_include`), and reports non-blank text.
    fn each_child(&mut self, el: El<'_, '_>, allow_include: bool, handle: &mut ChildFn<'_, 'f>) {
        self.each_child_in(el, el.name(), allow_include, handle);
    }

    /// A container that may stand once in `parent` (`seen` remembers it),
    /// has no attributes and holds only `kind` elements: calls `each` for
    /// every one and reports anything else as unknown. The shape of
    /// `<memory>` of `<map>`s, `<devices>` of `<device>`s and the like.
    fn list_once(
        &mut self,
        seen: &mut Option<Span>,
        container: El<'_, '_>,
        parent: &str,
        kind: &str,
        each: &mut ChildFn<'_, 'f>,
    ) {
        if !self.first_time(seen, container, parent) {
            return;
        }
        self.attributes(container, &[]);
        let name = container.name();
        self.each_child(container, false, &mut |ctx, el| {
            if el.name() == kind {
                each(ctx, el);
            } else {
                ctx.unknown_element(el, name, &[kind]);
            }
        });
    }

    /// [`Self::each_child`] where includes count as standing in an element
    /// called `container` (not `el` itself when `el` is an included file's
    /// `<include>` root).
    fn each_child_in(
        &mut self,
        el: El<'_, '_>,
        container: &str,
        allow_include: bool,
        handle: &mut ChildFn<'_, 'f>,
    ) {
        for node in el.node.children() {
            if node.is_text() {
                let text = node.text().unwrap_or("");
                let trimmed = text.trim_start();
                if !trimmed.is_empty() {
                    let start = node.range().start + (text.len() - trimmed.len());
                    let len = trimmed.trim_end().len().max(1);
                    self.diags.error(
                        ids::UNEXPECTED_TEXT,
                        el.span_of(start..start + len),
                        format!("unexpected text in <{}>", el.name()),
                    );
                }
                continue;
            }
            if !node.is_element() {
                continue;
            }
            let child = El {
                node,
                file: el.file,
            };
            if self.give_up_at(child.span()) {
                return;
            }
            if node.tag_name().namespace().is_some() {
                self.diags.push(
                    Diagnostic::error(
                        ids::UNKNOWN_ELEMENT,
                        child.span(),
                        format!(
                            "unknown element <{}> in <{}>",
                            quoted(child.qualified_name()),
                            el.name()
                        ),
                    )
                    .with_help("elements in an XML namespace are not part of the policy language"),
                );
                continue;
            }
            if allow_include && child.name() == "include" {
                self.include(child, container, handle);
            } else {
                handle(self, child);
            }
        }
    }

    /// Whether loading should stop walking the tree: [`MAX_LOAD_DIAGNOSTICS`]
    /// were reported. The first time, reports that at `here`.
    fn give_up_at(&mut self, here: Span) -> bool {
        if self.diags.len() < MAX_LOAD_DIAGNOSTICS {
            return false;
        }
        if !self.gave_up {
            self.gave_up = true;
            self.diags.push(
                Diagnostic::error(
                    ids::ERRORS_TOO_MANY,
                    here,
                    format!(
                        "loading stopped here after {MAX_LOAD_DIAGNOSTICS} diagnostics; the rest \
                         of the policy was not read"
                    ),
                )
                .with_help("fix the problems above and validate again"),
            );
        }
        true
    }

    /// Handles `<include href>` inside an element called `container`.
    fn include(&mut self, inc: El<'_, '_>, container: &str, handle: &mut ChildFn<'_, 'f>) {
        self.attributes(inc, &["href"]);
        self.no_children(inc);
        let Some(href) = self.required(inc, "href") else {
            return;
        };
        let display = self.resolve_href(inc.file, &href.value);
        let identity = self.files.identity(&display);
        if let Some((_, first)) = self.include_stack.iter().find(|(id, _)| *id == identity) {
            let mut diagnostic = Diagnostic::error(
                ids::INCLUDE_CYCLE,
                href.span,
                format!("include cycle: `{}` is already being included", href.value),
            )
            .with_help("an included file must not include itself, directly or indirectly");
            diagnostic = match first {
                Some(first) => diagnostic.with_label(*first, "first included here"),
                None => diagnostic
                    .with_label(Span::file_start(FileId(0)), "the policy file being loaded"),
            };
            self.diags.push(diagnostic);
            return;
        }
        if self.include_stack.len() > MAX_INCLUDE_DEPTH {
            self.diags.error(
                ids::INCLUDE_TOO_DEEP,
                href.span,
                format!("includes are nested more than {MAX_INCLUDE_DEPTH} files deep"),
            );
            return;
        }
        let Some((file, text)) =
            self.open(&display, &href.value, Some(href.span), ids::INCLUDE_MISSING)
        else {
            return;
        };
        let Some(doc) = self.parse_doc(file, &text) else {
            return;
        };
        let root = El {
            node: doc.root_element(),
            file,
        };
        let accepted = include_children(container);
        let has_attributes = root.node.attributes().any(|a| a.namespace().is_none());
        // The root's children are spliced in: a root named like the
        // container (unless the container holds elements of its own name
        // and the root has attributes, as a `<memory name>` region in
        // `<memory>` does), or the anchor's `<include>` root.
        let splice = root.name() == "include"
            || (root.name() == container && !(has_attributes && accepted.contains(&container)));
        // The anchor's other form: the root is one element of the container.
        let element = !splice && accepted.contains(&root.name());
        if !splice && !element {
            self.diags.push(
                Diagnostic::error(
                    ids::INCLUDE_ROOT_MISMATCH,
                    href.span,
                    format!(
                        "`{}` has root element <{}>, but is included in <{container}>",
                        quoted(&href.value),
                        quoted(root.name())
                    ),
                )
                .with_label(root.span(), "root element")
                .with_help(format!(
                    "an included file's root element must be <{container}> or <include> (its \
                     children are spliced in), or one element <{container}> holds: {}",
                    accepted
                        .iter()
                        .map(|a| format!("<{a}>"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
            return;
        }
        self.include_stack.push((identity, Some(href.span)));
        if splice {
            self.attributes(root, &[]);
            self.each_child_in(root, container, true, handle);
        } else {
            handle(self, root);
        }
        self.include_stack.pop();
    }

    /// Reports every child element of `el` (it has none in the language).
    fn no_children(&mut self, el: El<'_, '_>) {
        self.each_child(el, false, &mut |ctx, child| {
            ctx.unknown_element(child, el.name(), &[])
        });
    }

    /// Reports every child element of `el`, which holds only text.
    fn text_only(&mut self, el: El<'_, '_>) {
        for node in el.node.children().filter(|n| n.is_element()) {
            let child = El {
                node,
                file: el.file,
            };
            self.unknown_element(child, el.name(), &[]);
        }
    }

    /// Reports `child` as not allowed inside `parent`.
    fn unknown_element(&mut self, child: El<'_, '_>, parent: &str, allowed: &[&str]) {
        if child.node.tag_name().namespace().is_none()
            && let Some((ours, help)) = anchor::element(parent, child.name(), allowed)
        {
            self.diags.push(
                Diagnostic::error(
                    ids::ANCHOR_SPELLING,
                    child.span(),
                    format!(
                        "<{}> in <{parent}> is the anchor's spelling; {ours}",
                        child.name()
                    ),
                )
                .with_help(help),
            );
            return;
        }
        let help = if allowed.is_empty() {
            format!("<{parent}> has no child elements")
        } else {
            format!(
                "<{parent}> may contain: {}",
                list(allowed, |a| format!("<{a}>"))
            )
        };
        self.diags.push(
            Diagnostic::error(
                ids::UNKNOWN_ELEMENT,
                child.span(),
                format!(
                    "unknown element <{}> in <{parent}>",
                    quoted(child.qualified_name())
                ),
            )
            .with_help(help),
        );
    }

    /// Reports a second occurrence of an element that may appear once;
    /// returns whether `el` is the first.
    fn first_time(&mut self, seen: &mut Option<Span>, el: El<'_, '_>, parent: &str) -> bool {
        match *seen {
            None => {
                *seen = Some(el.span());
                true
            }
            Some(first) => {
                self.diags.push(
                    Diagnostic::error(
                        ids::DUPLICATE_ELEMENT,
                        el.span(),
                        format!("<{parent}> has more than one <{}>", el.name()),
                    )
                    .with_label(first, "first one here"),
                );
                false
            }
        }
    }

    /// Reports a missing required child element.
    fn missing_element(&mut self, parent: El<'_, '_>, name: &str) {
        self.diags.error(
            ids::MISSING_ELEMENT,
            parent.span(),
            format!("<{}> needs a <{name}> element", parent.name()),
        );
    }

    // -------------------------------------------------------- attributes

    /// Reports attributes of `el` not in `allowed`. Attributes in a
    /// namespace (`xsi:...`, for editors) are ignored.
    fn attributes(&mut self, el: El<'_, '_>, allowed: &[&str]) {
        for attr in el.node.attributes() {
            if attr.namespace().is_some() || allowed.contains(&attr.name()) {
                continue;
            }
            if let Some((ours, help)) = anchor::attribute(el.name(), attr.name()) {
                self.diags.push(
                    Diagnostic::error(
                        ids::ANCHOR_SPELLING,
                        el.span_of(attr.range_qname()),
                        format!(
                            "`{}` on <{}> is the anchor's spelling; {ours}",
                            attr.name(),
                            el.name()
                        ),
                    )
                    .with_help(help),
                );
                continue;
            }
            let help = if allowed.is_empty() {
                format!("<{}> has no attributes", el.name())
            } else {
                format!(
                    "<{}> takes: {}",
                    el.name(),
                    list(allowed, |a| a.to_string())
                )
            };
            self.diags.push(
                Diagnostic::error(
                    ids::UNKNOWN_ATTRIBUTE,
                    el.span_of(attr.range_qname()),
                    format!(
                        "unknown attribute `{}` on <{}>",
                        quoted(attr.name()),
                        el.name()
                    ),
                )
                .with_help(help),
            );
        }
    }

    /// The attribute's value, if present.
    fn optional(&self, el: El<'_, '_>, name: &str) -> Option<Spanned<String>> {
        el.node
            .attributes()
            .find(|a| a.name() == name && a.namespace().is_none())
            .map(|a| Spanned::new(a.value().to_owned(), el.span_of(a.range_value())))
    }

    /// The attribute's value; reports it missing if absent.
    fn required(&mut self, el: El<'_, '_>, name: &str) -> Option<Spanned<String>> {
        let value = self.optional(el, name);
        if value.is_none() {
            self.diags.error(
                ids::MISSING_ATTRIBUTE,
                el.span(),
                format!("<{}> needs the attribute `{name}`", el.name()),
            );
        }
        value
    }

    /// A required string; placeholder (empty, element span) if missing.
    fn string(&mut self, el: El<'_, '_>, name: &str) -> Spanned<String> {
        self.required(el, name)
            .unwrap_or_else(|| Spanned::new(String::new(), el.span()))
    }

    /// Checks a name's syntax.
    fn check_name(&mut self, value: &Spanned<String>) {
        if !is_valid_name(&value.value) {
            self.diags.push(
                Diagnostic::error(
                    ids::INVALID_NAME,
                    value.span,
                    format!("`{}` is not a valid name", quoted(&value.value)),
                )
                .with_help(
                    "names start with a letter or `_`, continue with letters, digits, `_`, `-` \
                     or `|`, and are at most 63 bytes",
                ),
            );
        }
    }

    /// A required name attribute (syntax-checked).
    fn name(&mut self, el: El<'_, '_>, attr: &str) -> Spanned<String> {
        match self.required(el, attr) {
            Some(value) => {
                self.check_name(&value);
                value
            }
            None => Spanned::new(String::new(), el.span()),
        }
    }

    /// Parses a number attribute value into `T`.
    fn convert<T: Bounded>(&mut self, raw: Spanned<String>, attr: &str) -> Option<Spanned<T>> {
        let parsed = parse_u64(&raw.value);
        let value = match parsed {
            Ok(v) => T::try_from(v).ok(),
            Err(NumberError::Overflow) => None,
            Err(error) => {
                let reason = error.reason().map_or(String::new(), |r| format!(": {r}"));
                self.diags.push(
                    Diagnostic::error(
                        ids::INVALID_NUMBER,
                        raw.span,
                        format!("`{}` is not a number{reason}", quoted(&raw.value)),
                    )
                    .with_help(
                        "write decimal (4096), hex (0x1000) or Ada (16#1000#); a single `_` may \
                         separate two digits (0x10_0000)",
                    ),
                );
                return None;
            }
        };
        if value.is_none() {
            self.diags.error(
                ids::NUMBER_OVERFLOW,
                raw.span,
                format!(
                    "`{}` is too large for `{attr}` (at most {})",
                    quoted(&raw.value),
                    T::MAX
                ),
            );
        }
        value.map(|v| Spanned::new(v, raw.span))
    }

    /// An optional number attribute.
    fn opt_number<T: Bounded>(&mut self, el: El<'_, '_>, attr: &str) -> Option<Spanned<T>> {
        let raw = self.optional(el, attr)?;
        self.convert(raw, attr)
    }

    /// A number attribute with a default (the default's span is the
    /// element's).
    fn number_or<T: Bounded>(&mut self, el: El<'_, '_>, attr: &str, default: T) -> Spanned<T> {
        self.opt_number(el, attr)
            .unwrap_or_else(|| Spanned::new(default, el.span()))
    }

    /// A required number attribute (placeholder zero if missing or bad).
    fn number<T: Bounded + Default>(&mut self, el: El<'_, '_>, attr: &str) -> Spanned<T> {
        match self.required(el, attr) {
            Some(raw) => {
                let span = raw.span;
                self.convert(raw, attr)
                    .unwrap_or_else(|| Spanned::new(T::default(), span))
            }
            None => Spanned::new(T::default(), el.span()),
        }
    }

    /// A boolean attribute with a default.
    fn boolean_or(&mut self, el: El<'_, '_>, attr: &str, default: bool) -> Spanned<bool> {
        let Some(raw) = self.optional(el, attr) else {
            return Spanned::new(default, el.span());
        };
        match parse_bool(&raw.value) {
            Some(value) => Spanned::new(value, raw.span),
            None => {
                self.diags.error(
                    ids::INVALID_BOOLEAN,
                    raw.span,
                    format!(
                        "`{}` is not a valid `{attr}`; expected `true` or `false`",
                        quoted(&raw.value)
                    ),
                );
                Spanned::new(default, raw.span)
            }
        }
    }

    /// An optional enumerated attribute.
    fn opt_enum<T: Copy>(
        &mut self,
        el: El<'_, '_>,
        attr: &str,
        options: &[(&str, T)],
    ) -> Option<Spanned<T>> {
        let raw = self.optional(el, attr)?;
        self.enum_value(raw, attr, options)
    }

    /// Maps an enumerated value, reporting one not in `options`.
    fn enum_value<T: Copy>(
        &mut self,
        raw: Spanned<String>,
        attr: &str,
        options: &[(&str, T)],
    ) -> Option<Spanned<T>> {
        if let Some((_, value)) = options.iter().find(|(name, _)| *name == raw.value) {
            return Some(Spanned::new(*value, raw.span));
        }
        self.diags.error(
            ids::INVALID_ENUM,
            raw.span,
            format!(
                "`{}` is not a valid `{attr}`; expected one of: {}",
                quoted(&raw.value),
                list(
                    &options
                        .iter()
                        .filter(|(name, _)| !anchor::SYNONYMS.contains(name))
                        .collect::<Vec<_>>(),
                    |(name, _)| (*name).to_owned()
                )
            ),
        );
        None
    }

    /// A required enumerated attribute (placeholder `fallback` if missing or
    /// bad; the error is reported either way).
    fn enumeration<T: Copy>(
        &mut self,
        el: El<'_, '_>,
        attr: &str,
        options: &[(&str, T)],
        fallback: T,
    ) -> Spanned<T> {
        match self.required(el, attr) {
            Some(raw) => {
                let span = raw.span;
                self.enum_value(raw, attr, options)
                    .unwrap_or(Spanned::new(fallback, span))
            }
            None => Spanned::new(fallback, el.span()),
        }
    }
}

/// What [`prescan`] rejects, with byte ranges to point at.
#[derive(Debug, PartialEq, Eq)]
enum Prescan {
    /// A `<!DOCTYPE` (the range covers those nine bytes).
    Doctype(std::ops::Range<usize>),
    /// The `<name` of the first start tag nested deeper than
    /// [`MAX_NESTING`].
    TooDeep(std::ops::Range<usize>),
    /// The first attribute name past [`MAX_ATTRIBUTES`], and its element's
    /// `<name`.
    TooManyAttributes {
        element: std::ops::Range<usize>,
        attribute: std::ops::Range<usize>,
    },
    /// The first namespace declaration past [`MAX_NAMESPACE_DECLARATIONS`].
    TooManyNamespaces(std::ops::Range<usize>),
}

/// XML white space.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// One linear lexical pass over `text` that finds what would make the XML
/// parser slow or recurse deeply, before it runs: a DTD, nesting deeper
/// than [`MAX_NESTING`], more than [`MAX_ATTRIBUTES`] attributes on one
/// element, more than [`MAX_NAMESPACE_DECLARATIONS`] namespace declarations.
/// It skips comments, CDATA and processing instructions and reads start
/// tags attribute by attribute. At anything malformed it stops (returning
/// `None`): the XML parser stops there too and reports it, so it never gets
/// further into the text than this scan did.
fn prescan(text: &str) -> Option<Prescan> {
    let bytes = text.as_bytes();
    let find = |from: usize, pattern: &str| {
        text.get(from..)
            .and_then(|rest| rest.find(pattern))
            .map(|at| from + at + pattern.len())
    };
    let skip_space = |mut j: usize| {
        while bytes.get(j).copied().is_some_and(is_space) {
            j += 1;
        }
        j
    };
    // Ends a tag or attribute name (ASCII, so the ranges below fall on
    // character boundaries).
    let ends_name = |b: u8| is_space(b) || matches!(b, b'/' | b'>' | b'=');
    let mut depth = 0usize;
    let mut namespaces = 0usize;
    let mut i = 0;
    while let Some(at) = text
        .get(i..)
        .and_then(|rest| rest.find('<'))
        .map(|at| i + at)
    {
        let rest = bytes.get(at..).unwrap_or_default();
        if rest.starts_with(b"<!--") {
            i = find(at + 4, "-->")?;
        } else if rest.starts_with(b"<![CDATA[") {
            i = find(at + 9, "]]>")?;
        } else if rest.starts_with(b"<?") {
            i = find(at + 2, "?>")?;
        } else if rest.starts_with(b"<!DOCTYPE") {
            return Some(Prescan::Doctype(at..at + 9));
        } else if rest.starts_with(b"<!") {
            return None;
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            i = find(at + 2, ">")?;
        } else {
            // A start tag: its name, then attributes up to `>` or `/>`.
            let mut j = at + 1;
            while bytes.get(j).is_some_and(|&b| !ends_name(b)) {
                j += 1;
            }
            let element = at..j;
            let mut attributes = 0usize;
            let self_closing = loop {
                j = skip_space(j);
                match bytes.get(j)? {
                    b'>' => break false,
                    b'/' if bytes.get(j + 1) == Some(&b'>') => {
                        j += 1;
                        break true;
                    }
                    _ => {}
                }
                let name_start = j;
                while bytes.get(j).is_some_and(|&b| !ends_name(b)) {
                    j += 1;
                }
                if j == name_start {
                    return None;
                }
                let name = text.get(name_start..j)?;
                attributes += 1;
                if attributes > MAX_ATTRIBUTES {
                    return Some(Prescan::TooManyAttributes {
                        element,
                        attribute: name_start..j,
                    });
                }
                if name == "xmlns" || name.starts_with("xmlns:") {
                    namespaces += 1;
                    if namespaces > MAX_NAMESPACE_DECLARATIONS {
                        return Some(Prescan::TooManyNamespaces(name_start..j));
                    }
                }
                j = skip_space(j);
                if bytes.get(j) != Some(&b'=') {
                    return None;
                }
                j = skip_space(j + 1);
                let quote = *bytes.get(j)?;
                if quote != b'"' && quote != b'\'' {
                    return None;
                }
                j = find(j + 1, if quote == b'"' { "\"" } else { "'" })?;
            };
            if !self_closing {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(Prescan::TooDeep(element));
                }
            }
            i = j + 1;
        }
    }
    None
}

/// The XML parser's message without its ` at LINE:COL` parts (the
/// diagnostic carries the position).
fn without_positions(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(" at ") {
        let after = &rest[at + 4..];
        let len = after
            .find(|c: char| !(c.is_ascii_digit() || c == ':'))
            .unwrap_or(after.len());
        let position = &after[..len];
        let is_position =
            position.split(':').count() == 2 && position.split(':').all(|p| !p.is_empty());
        out.push_str(&rest[..at]);
        if !is_position {
            out.push_str(" at ");
        }
        rest = if is_position { &after[len..] } else { after };
    }
    out.push_str(rest);
    out
}

/// Longest value quoted whole in a message, in characters.
const MAX_QUOTED_CHARS: usize = 64;

/// `value` as quoted in a message: a long value is cut to its first
/// [`MAX_QUOTED_CHARS`] characters and its length (the span still covers
/// all of it), so messages stay short whatever the input.
pub(crate) fn quoted(value: &str) -> String {
    match value.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{}… ({} bytes)", &value[..cut], value.len()),
        None => value.to_owned(),
    }
}

/// `a, b, c` from items.
fn list<T>(items: &[T], show: impl Fn(&T) -> String) -> String {
    items.iter().map(show).collect::<Vec<_>>().join(", ")
}

/// The elements an `<include>` in `container` may bring in one at a time
/// (an included file whose root is one of them): what `container` holds.
fn include_children(container: &str) -> &'static [&'static str] {
    match container {
        "system" => &[
            "hardware",
            "kernel",
            "memory",
            "deviceDomains",
            "events",
            "channels",
            "subjects",
            "scheduling",
            "flows",
        ],
        "memory" => &["memory"],
        "deviceDomains" => &["domain"],
        "flows" => &["deny"],
        "events" => &["event"],
        "channels" => &["channel"],
        "subjects" => &["subject"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_in_messages() {
        assert_eq!(quoted("abc"), "abc");
        let long = "é".repeat(100);
        assert_eq!(
            quoted(&long),
            format!("{}… (200 bytes)", "é".repeat(MAX_QUOTED_CHARS))
        );
    }

    #[test]
    fn parser_positions_are_dropped_from_messages() {
        assert_eq!(
            without_positions("attribute 'a' at 1:34 is already defined"),
            "attribute 'a' is already defined"
        );
        assert_eq!(without_positions("unexpected end at 3:1"), "unexpected end");
        assert_eq!(without_positions("look at this at 2:5"), "look at this");
        assert_eq!(without_positions("at 1:2"), "at 1:2");
    }

    #[test]
    fn the_prescan_skips_comments_quotes_and_self_closing_tags() {
        let deep = |n: usize| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
        assert_eq!(prescan(&deep(MAX_NESTING)), None);
        let at = 3 * MAX_NESTING;
        assert_eq!(
            prescan(&deep(MAX_NESTING + 1)),
            Some(Prescan::TooDeep(at..at + 2))
        );
        let tricky = format!(
            "<r><!-- <a><a> --><![CDATA[<a><a>]]><?pi <a> ?><b x='>' y=\"/>\"/>{}</r>",
            "<c/>".repeat(100)
        );
        assert_eq!(prescan(&tricky), None);
    }

    #[test]
    fn the_prescan_counts_attributes_and_namespaces() {
        let attrs = |n: usize| (0..n).map(|i| format!(" a{i} = 'v>'")).collect::<String>();
        assert_eq!(prescan(&format!("<r{}/>", attrs(MAX_ATTRIBUTES))), None);
        let text = format!("<r{}/>", attrs(MAX_ATTRIBUTES + 1));
        let Some(Prescan::TooManyAttributes { element, attribute }) = prescan(&text) else {
            panic!("not found");
        };
        assert_eq!((element, &text[attribute]), (0..2, "a64"));
        // Unclosed: still counted.
        let text = format!("<r{}", attrs(MAX_ATTRIBUTES + 1));
        assert!(matches!(
            prescan(&text),
            Some(Prescan::TooManyAttributes { .. })
        ));
        let ns = |n: usize| {
            (0..n)
                .map(|i| format!("<e xmlns:n{i}='u'/>"))
                .collect::<String>()
        };
        assert_eq!(prescan(&format!("<r>{}</r>", ns(16))), None);
        assert!(matches!(
            prescan(&format!("<r>{}</r>", ns(17))),
            Some(Prescan::TooManyNamespaces(_))
        ));
        assert_eq!(
            prescan("<?xml version='1.0'?>\n<!DOCTYPE r><r/>"),
            Some(Prescan::Doctype(22..31))
        );
        assert_eq!(prescan("<r a='1' b/>"), None);
    }
}
