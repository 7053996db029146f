//! A small XML tree writer.
//!
//! Domain XML carries user-chosen strings (server names, metadata), so it is
//! never pasted together: typed structs build an [`Element`] tree and
//! [`Element::render`] escapes every attribute value and text node.

use std::fmt::Write;

/// One XML element with its attributes and children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
}

/// A child of an element.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    /// An empty element. `name` is one of ours (a literal), never user data.
    pub fn new(name: &str) -> Self {
        Element {
            name: name.to_string(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Adds an attribute.
    pub fn attr(mut self, name: &str, value: impl ToString) -> Self {
        self.attrs.push((name.to_string(), value.to_string()));
        self
    }

    /// Adds an attribute when `value` is `Some`.
    pub fn attr_opt(self, name: &str, value: Option<impl ToString>) -> Self {
        match value {
            Some(v) => self.attr(name, v),
            None => self,
        }
    }

    /// Adds a child element.
    pub fn child(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    /// Adds a child element when `child` is `Some`.
    pub fn child_opt(self, child: Option<Element>) -> Self {
        match child {
            Some(c) => self.child(c),
            None => self,
        }
    }

    /// Adds child elements.
    pub fn children(mut self, children: impl IntoIterator<Item = Element>) -> Self {
        self.children
            .extend(children.into_iter().map(Node::Element));
        self
    }

    /// Adds a text node.
    pub fn text(mut self, text: impl ToString) -> Self {
        self.children.push(Node::Text(text.to_string()));
        self
    }

    /// `<name>text</name>`: the common leaf.
    pub fn leaf(name: &str, text: impl ToString) -> Self {
        Element::new(name).text(text)
    }

    /// The document, indented by two spaces per level.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        let indent = "  ".repeat(depth);
        let _ = write!(out, "{indent}<{}", self.name);
        for (k, v) in &self.attrs {
            let _ = write!(out, " {k}=\"{}\"", escape(v));
        }
        if self.children.is_empty() {
            out.push_str("/>\n");
            return;
        }
        out.push('>');
        let only_text = self.children.iter().all(|c| matches!(c, Node::Text(_)));
        if only_text {
            for c in &self.children {
                if let Node::Text(t) = c {
                    out.push_str(&escape(t));
                }
            }
        } else {
            out.push('\n');
            for c in &self.children {
                match c {
                    Node::Element(e) => e.write(out, depth + 1),
                    Node::Text(t) => {
                        let _ = writeln!(out, "{indent}  {}", escape(t));
                    }
                }
            }
            out.push_str(&indent);
        }
        let _ = writeln!(out, "</{}>", self.name);
    }
}

/// Escapes the five XML special characters and drops characters XML 1.0
/// cannot carry (control characters other than tab and newlines).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_user_data_in_text_and_attributes() {
        let xml = Element::new("a")
            .attr("x", "\"<&>'")
            .child(Element::leaf("b", "</b><evil/>\u{1}"))
            .render();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let a = doc.root_element();
        assert_eq!(a.attribute("x"), Some("\"<&>'"));
        let b = a.first_element_child().unwrap();
        assert_eq!(b.text(), Some("</b><evil/>"));
        assert_eq!(b.children().count(), 1);
    }
}
