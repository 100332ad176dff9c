//! Expressions of equation-defined models: a recursive-descent parser over one line of text with byte positions
//! for located errors.
//!
//! Grammar: `cmp := sum [(>= | > | <= | <) sum]`, `sum := prod {(+ | -) prod}`, `prod := unary {(* | /) unary}`,
//! `unary := - unary | power`, `power := atom [(^ | **) [-]integer]`, `atom := number | name | name(args) | (cmp)`.

/// A parsed expression node with the byte position of its first character in the source line.
#[derive(Clone, Debug, PartialEq)]
pub struct Ast {
    pub node: Node,
    pub pos: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Num(f64),
    Name(String),
    Neg(Box<Ast>),
    Bin(BinOp, Box<Ast>, Box<Ast>),
    /// Integer power.
    Pow(Box<Ast>, i32),
    Call(String, Vec<Ast>),
    Cmp(CmpOp, Box<Ast>, Box<Ast>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Ge,
    Gt,
    Le,
    Lt,
}

impl CmpOp {
    /// The operator in C.
    pub fn c_symbol(self) -> &'static str {
        match self {
            CmpOp::Ge => ">=",
            CmpOp::Gt => ">",
            CmpOp::Le => "<=",
            CmpOp::Lt => "<",
        }
    }
}

/// A parse error at byte `pos` of the line.
#[derive(Clone, Debug, PartialEq)]
pub struct ParseError {
    pub pos: usize,
    pub msg: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64),
    Name(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == '.' && i + 1 < b.len() && (b[i + 1] as char).is_ascii_digit()) {
            let start = i;
            while i < b.len() && ((b[i] as char).is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            // Exponent: e/E followed by an optional sign and a digit.
            if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                let mut j = i + 1;
                if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
                    j += 1;
                }
                if j < b.len() && (b[j] as char).is_ascii_digit() {
                    i = j;
                    while i < b.len() && (b[i] as char).is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text = &src[start..i];
            let v = text.parse().map_err(|_| ParseError { pos: start, msg: format!("`{text}` is not a number") })?;
            out.push((Tok::Num(v), start));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && ((b[i] as char).is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((Tok::Name(src[start..i].to_string()), start));
        } else {
            let two = src.get(i..i + 2).unwrap_or("");
            let (tok, len) = match (two, c) {
                (">=", _) => (Tok::Op(">="), 2),
                ("<=", _) => (Tok::Op("<="), 2),
                ("**", _) => (Tok::Op("^"), 2),
                (_, '>') => (Tok::Op(">"), 1),
                (_, '<') => (Tok::Op("<"), 1),
                (_, '+') => (Tok::Op("+"), 1),
                (_, '-') => (Tok::Op("-"), 1),
                (_, '*') => (Tok::Op("*"), 1),
                (_, '/') => (Tok::Op("/"), 1),
                (_, '^') => (Tok::Op("^"), 1),
                (_, '(') => (Tok::LParen, 1),
                (_, ')') => (Tok::RParen, 1),
                (_, ',') => (Tok::Comma, 1),
                _ => return Err(ParseError { pos: i, msg: format!("unexpected character `{c}`") }),
            };
            out.push((tok, i));
            i += len;
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    k: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.k).map(|t| &t.0)
    }
    fn pos(&self) -> usize {
        self.toks.get(self.k).map_or(self.end, |t| t.1)
    }
    fn err<T>(&self, msg: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError { pos: self.pos(), msg: msg.into() })
    }
    fn op(&mut self, ops: &[&'static str]) -> Option<&'static str> {
        if let Some(Tok::Op(o)) = self.peek()
            && ops.contains(o)
        {
            let o = *o;
            self.k += 1;
            return Some(o);
        }
        None
    }

    fn cmp(&mut self) -> Result<Ast, ParseError> {
        let lhs = self.sum()?;
        let pos = self.pos();
        let Some(o) = self.op(&[">=", ">", "<=", "<"]) else { return Ok(lhs) };
        let rhs = self.sum()?;
        let op = match o {
            ">=" => CmpOp::Ge,
            ">" => CmpOp::Gt,
            "<=" => CmpOp::Le,
            _ => CmpOp::Lt,
        };
        Ok(Ast { node: Node::Cmp(op, Box::new(lhs), Box::new(rhs)), pos })
    }

    fn sum(&mut self) -> Result<Ast, ParseError> {
        let mut lhs = self.prod()?;
        loop {
            let pos = self.pos();
            let Some(o) = self.op(&["+", "-"]) else { return Ok(lhs) };
            let rhs = self.prod()?;
            let op = if o == "+" { BinOp::Add } else { BinOp::Sub };
            lhs = Ast { node: Node::Bin(op, Box::new(lhs), Box::new(rhs)), pos };
        }
    }

    fn prod(&mut self) -> Result<Ast, ParseError> {
        let mut lhs = self.unary()?;
        loop {
            let pos = self.pos();
            let Some(o) = self.op(&["*", "/"]) else { return Ok(lhs) };
            let rhs = self.unary()?;
            let op = if o == "*" { BinOp::Mul } else { BinOp::Div };
            lhs = Ast { node: Node::Bin(op, Box::new(lhs), Box::new(rhs)), pos };
        }
    }

    fn unary(&mut self) -> Result<Ast, ParseError> {
        let pos = self.pos();
        if self.op(&["-"]).is_some() {
            let inner = self.unary()?;
            return Ok(Ast { node: Node::Neg(Box::new(inner)), pos });
        }
        if self.op(&["+"]).is_some() {
            return self.unary();
        }
        self.power()
    }

    fn power(&mut self) -> Result<Ast, ParseError> {
        let base = self.atom()?;
        let pos = self.pos();
        if self.op(&["^"]).is_none() {
            return Ok(base);
        }
        let neg = self.op(&["-"]).is_some();
        match self.peek() {
            Some(Tok::Num(v)) if v.fract() == 0.0 && v.abs() <= 64.0 => {
                let n = if neg { -(*v as i32) } else { *v as i32 };
                self.k += 1;
                Ok(Ast { node: Node::Pow(Box::new(base), n), pos })
            }
            _ => self.err("the exponent must be an integer literal between -64 and 64 (write exp(y*log(x)) otherwise)"),
        }
    }

    fn atom(&mut self) -> Result<Ast, ParseError> {
        let pos = self.pos();
        match self.peek().cloned() {
            Some(Tok::Num(v)) => {
                self.k += 1;
                Ok(Ast { node: Node::Num(v), pos })
            }
            Some(Tok::Name(n)) => {
                self.k += 1;
                if self.peek() == Some(&Tok::LParen) {
                    self.k += 1;
                    let mut args = Vec::new();
                    if self.peek() != Some(&Tok::RParen) {
                        loop {
                            args.push(self.sum()?);
                            if self.peek() == Some(&Tok::Comma) {
                                self.k += 1;
                            } else {
                                break;
                            }
                        }
                    }
                    if self.peek() != Some(&Tok::RParen) {
                        return self.err(format!("expected `,` or `)` in the arguments of `{n}`"));
                    }
                    self.k += 1;
                    return Ok(Ast { node: Node::Call(n, args), pos });
                }
                Ok(Ast { node: Node::Name(n), pos })
            }
            Some(Tok::LParen) => {
                self.k += 1;
                let inner = self.sum()?;
                if self.peek() != Some(&Tok::RParen) {
                    return self.err("expected `)`");
                }
                self.k += 1;
                Ok(inner)
            }
            Some(t) => self.err(format!("expected a number, a name or `(`, found {}", describe(&t))),
            None => self.err("the expression ends too early"),
        }
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(v) => format!("`{v}`"),
        Tok::Name(n) => format!("`{n}`"),
        Tok::Op(o) => format!("`{o}`"),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::Comma => "`,`".into(),
    }
}

/// Parses `src` as one expression (a comparison allowed at the top level only if `comparison`).
pub fn parse(src: &str, comparison: bool) -> Result<Ast, ParseError> {
    let mut p = Parser { toks: lex(src)?, k: 0, end: src.len() };
    let e = p.cmp()?;
    if p.k < p.toks.len() {
        return p.err(format!("unexpected {} after the expression", describe(&p.toks[p.k].0)));
    }
    if !comparison && matches!(e.node, Node::Cmp(..)) {
        return Err(ParseError { pos: e.pos, msg: "a comparison is allowed only in `threshold`".into() });
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(a: &Ast) -> String {
        match &a.node {
            Node::Num(v) => format!("{v}"),
            Node::Name(n) => n.clone(),
            Node::Neg(x) => format!("(-{})", show(x)),
            Node::Bin(o, x, y) => format!("({} {:?} {})", show(x), o, show(y)),
            Node::Pow(x, n) => format!("({})^{n}", show(x)),
            Node::Call(f, args) => format!("{f}({})", args.iter().map(show).collect::<Vec<_>>().join(", ")),
            Node::Cmp(o, x, y) => format!("{} {:?} {}", show(x), o, show(y)),
        }
    }

    #[test]
    fn precedence_associativity_and_positions() {
        let e = parse("-(V - E_L)/tau_m + (I_ex + I_e)/C_m", false).unwrap();
        assert_eq!(show(&e), "(((-(V Sub E_L)) Div tau_m) Add ((I_ex Add I_e) Div C_m))");
        let e = parse("a - b - c * d / e ^ 2", false).unwrap();
        assert_eq!(show(&e), "((a Sub b) Sub ((c Mul d) Div (e)^2))");
        assert_eq!(show(&parse("x**-2 + exp(-x/2.5e-1)", false).unwrap()), "((x)^-2 Add exp(((-x) Div 0.25)))");
        assert_eq!(show(&parse("V >= V_th", true).unwrap()), "V Ge V_th");
        let e = parse("g * (E - V)", false).unwrap();
        assert_eq!(e.pos, 2);
    }

    #[test]
    fn errors_point_at_the_offending_character() {
        let e = parse("(V - E_L / tau", false).unwrap_err();
        assert_eq!((e.pos, e.msg.as_str()), (14, "expected `)`"));
        let e = parse("V + $x", false).unwrap_err();
        assert_eq!(e.pos, 4);
        let e = parse("V ^ 1.5", false).unwrap_err();
        assert!(e.msg.contains("integer"), "{}", e.msg);
        let e = parse("V >= 3", false).unwrap_err();
        assert!(e.msg.contains("threshold"), "{}", e.msg);
        let e = parse("V W", false).unwrap_err();
        assert_eq!(e.pos, 2);
        assert!(parse("", false).unwrap_err().msg.contains("ends too early"));
    }
}
