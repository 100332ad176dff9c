//! A minimal reader of the ELF64 little-endian header and symbol table of a cubin (System V gABI layout), to
//! check NVRTC's output without NVIDIA's tools. Every read is bounds-checked; malformed input gives `Err`.

/// `e_machine` of CUDA cubins (`EM_CUDA` in the System V gABI machine list).
pub const EM_CUDA: u16 = 190;

/// One symbol of `.symtab`.
#[derive(Debug)]
pub struct Symbol {
    pub name: String,
    /// `STT_*` (2 = `STT_FUNC`).
    pub kind: u8,
    /// `STB_*` (1 = `STB_GLOBAL`).
    pub binding: u8,
}

/// Header fields and symbols of an ELF64 image.
#[derive(Debug)]
pub struct Elf {
    /// `e_ident[EI_ABIVERSION]` (7 or 8 for CUDA cubins).
    pub abi_version: u8,
    pub machine: u16,
    pub flags: u32,
    pub symbols: Vec<Symbol>,
}

fn bytes(b: &[u8], at: usize, n: usize) -> Result<&[u8], String> {
    b.get(at..at.checked_add(n).ok_or("offset overflow")?)
        .ok_or_else(|| format!("read of {n} bytes at {at} past the end"))
}
fn u16_at(b: &[u8], at: usize) -> Result<u16, String> {
    Ok(u16::from_le_bytes(bytes(b, at, 2)?.try_into().unwrap()))
}
fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    Ok(u32::from_le_bytes(bytes(b, at, 4)?.try_into().unwrap()))
}
fn u64_at(b: &[u8], at: usize) -> Result<usize, String> {
    Ok(u64::from_le_bytes(bytes(b, at, 8)?.try_into().unwrap()) as usize)
}

/// A NUL-terminated string at `at` of the string table `strtab`.
fn c_str(strtab: &[u8], at: usize) -> Result<String, String> {
    let tail = strtab.get(at..).ok_or("string offset past the table")?;
    let end = tail.iter().position(|&c| c == 0).ok_or("unterminated string")?;
    Ok(String::from_utf8_lossy(&tail[..end]).into_owned())
}

/// Section header `i`: (type, offset, size, link).
fn section(b: &[u8], shoff: usize, shentsize: usize, i: usize) -> Result<(u32, usize, usize, usize), String> {
    let h = shoff + i * shentsize;
    Ok((u32_at(b, h + 4)?, u64_at(b, h + 24)?, u64_at(b, h + 32)?, u32_at(b, h + 40)? as usize))
}

/// Parses `b` as an ELF64 little-endian image and reads its `.symtab` (section type `SHT_SYMTAB` = 2).
pub fn parse(b: &[u8]) -> Result<Elf, String> {
    if bytes(b, 0, 4)? != b"\x7fELF" {
        return Err("no ELF magic".into());
    }
    if bytes(b, 4, 2)? != [2, 1] {
        return Err("not ELF64 little-endian".into());
    }
    let (abi_version, machine, flags) = (bytes(b, 8, 1)?[0], u16_at(b, 18)?, u32_at(b, 48)?);
    let (shoff, shentsize, shnum) = (u64_at(b, 40)?, u16_at(b, 58)? as usize, u16_at(b, 60)? as usize);
    let mut symbols = Vec::new();
    for i in 0..shnum {
        let (kind, off, size, link) = section(b, shoff, shentsize, i)?;
        if kind != 2 {
            continue;
        }
        let (_, str_off, str_size, _) = section(b, shoff, shentsize, link)?;
        let strtab = bytes(b, str_off, str_size)?;
        for s in bytes(b, off, size)?.chunks_exact(24) {
            symbols.push(Symbol { name: c_str(strtab, u32_at(s, 0)? as usize)?, kind: s[4] & 0xf, binding: s[4] >> 4 });
        }
    }
    Ok(Elf { abi_version, machine, flags, symbols })
}

impl Elf {
    /// The real architecture (`10 * major + minor`) in `e_flags` of a CUDA cubin: the `EF_CUDA_SM` byte, bits
    /// 0–7 for ELF ABI version 7, bits 8–15 for version 8 (NVIDIA does not document the layout; it is how
    /// cuobjdump/nvdisasm decode `.headerflags @"EF_CUDA_SM90 EF_CUDA_VIRTUAL_SM(EF_CUDA_SM90)"`: 0x5a055a for
    /// sm_90 under ABI 7, 0x6007802 for sm_120 under ABI 8). `None` for other ABI versions.
    pub fn cuda_sm(&self) -> Option<u32> {
        match self.abi_version {
            7 => Some(self.flags & 0xff),
            8 => Some((self.flags >> 8) & 0xff),
            _ => None,
        }
    }

    /// Whether `name` is a global function symbol (a kernel entry point).
    pub fn has_global_function(&self, name: &str) -> bool {
        self.symbols.iter().any(|s| s.name == name && s.kind == 2 && s.binding == 1)
    }
}
