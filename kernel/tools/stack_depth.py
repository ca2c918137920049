#!/usr/bin/env python3
"""Worst-case stack depth of the Septum kernel (the ASSURANCE.md stack gate).

Builds the release kernel with nightly `-Z emit-stack-sizes` (and
`-Z build-std` so that `core` and `compiler_builtins` carry stack sizes too),
then walks the call graph of the linked ELF:

- frame sizes come from the `.stack_sizes` section (LLVM's fixed frame:
  pushes of callee-saved registers plus the `sub rsp`), plus 8 bytes for the
  return address of every call; the assembly stubs have no entry there and
  get their frame from their own instructions (every `push` and `sub $n,
  %rsp` counted, nothing subtracted) or from the table `ASM` below;
- edges come from `llvm-objdump -d`: direct calls and jumps to another
  function (a tail call is counted as a call: an over-estimate), calls
  through the GOT (the target is read from the image), and indirect calls;
- an indirect call or tail call is allowed only in the functions listed in
  `INDIRECT_ALLOWED` (each with its reason) and may reach every function
  whose address is taken anywhere (an 8-byte word in a loaded section, or an
  immediate/RIP-relative operand in the code), except hardware entry points
  that software never calls (`NOT_CALLED`). This ignores types, so it
  over-estimates;
- recursion fails the gate; a cycle through an indirect call (core::fmt
  re-enters itself when a `Display` impl uses `write!`) is bounded by at
  most `INDIRECT_DEPTH` indirect calls on any path (see its comment);
- the stacks are the kernel's own (sizes read from the symbols of boot.rs
  and percpu.rs; every CPU's exit and IST stacks have CPU 0's sizes):
  the boot path starts at `septum_start64` on the boot stack, the exit path
  at `septum_vmexit_stub` (and `septum_vmx_enter`) on the exit stack, an
  application processor's boot path at `septum_ap_start64` on its exit
  stack one page below the top (`percpu::ap_boot_stack_top`, hence the
  stack size minus `AP_BOOT_STACK_GAP`), and a root-mode exception adds its
  frame on top of any of them, or runs alone on an IST stack (double
  fault, NMI, machine check).

The gate fails on recursion, on an indirect call outside the allow-list, on
a function without a known frame size, and on a worst case above a stack.
`--self-test` then injects each of these faults into the real graph and
checks that the gate catches it. Assumptions: the stubs do not push in
loops (their frame is the largest straight-line run of pushes), and
`INDIRECT_DEPTH` bounds the real nesting of formatting.

Usage (from the repository root):
  python3 kernel/tools/stack_depth.py --spec /abs/OUT/spec.rs [--features F]
  python3 kernel/tools/stack_depth.py --elf PATH     (analyse a built ELF)
  add --self-test to check that the gate catches injected faults; exit
  status 0 = every check passed.
"""

from __future__ import annotations

import argparse
import os
import re
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

KERNEL_DIR = Path(__file__).resolve().parent.parent

# Indirect calls on one call path. Only core::fmt calls indirectly (calls
# through a register holding a known function address are resolved, see
# resolve_register_calls): each formatting level makes one call to an
# argument's formatter, and the Formatter finally calls a dyn Write method
# of the output (the UART's write_str/write_char, which call nothing;
# Formatter::write_fmt calls fmt::write directly). kprintln! is one level;
# each Display impl that formats with write! adds one. The deepest nesting
# in the kernel is the refusal after a bad boot information structure:
# print_line("... {args}") -> <Arguments as Display> -> write!("{reason}")
# in <BootInfoError as Display> -> write!(..) in <MbiError as Display>,
# whose arguments are integers: 4 formatter calls and 1 dyn Write call.
# Raise this (with the chain) when a deeper nesting is added: the result
# is only as good as this bound.
INDIRECT_DEPTH = 5

# Functions that may contain indirect calls, with the reason.
INDIRECT_ALLOWED = [
    (r"^core::fmt::", "calls the argument formatters of fmt::Arguments "
     "and the dyn Write methods of the output"),
    (r"^<core::fmt::Formatter>::", "calls the dyn Write methods of its output"),
    (r"^<[^>]* as core::fmt::(Display|Debug|LowerHex|UpperHex|Write)>::",
     "formatting impls write through Formatter (dyn Write)"),
]

# Hardware entry points: their addresses are taken (IDT, HOST_RIP, ELF
# entry) but no software calls them, so indirect calls do not reach them.
NOT_CALLED = {
    "septum_start32": "the ELF entry point (GRUB jumps to it)",
    "septum_exception_stubs": "the IDT gates point into it",
    "septum_interrupt_stubs": "IDT vectors 32 to 255 point into it (taken "
                              "only in interrupts::take_requested's window)",
    "septum_root_nmi": "IDT vector 2 points at it (nmi.rs: one locked "
                       "increment and IRETQ on the NMI IST stack, no call)",
    "septum_vmexit_stub": "HOST_RIP of every VMCS (the CPU enters it)",
    "septum_ap_start32": "an AP's start-up code (real mode, copied to 0x8000) "
                         "far-jumps to it",
}

# An AP's boot path starts this many bytes below the top of its exit stack
# (`percpu::ap_boot_stack_top`; the per-CPU block is above the top).
AP_BOOT_STACK_GAP = 4096


@dataclass
class AsmNode:
    """A hand-written stub whose stack effect the disassembly cannot give."""

    frame: int
    reason: str
    edges: list[str] = field(default_factory=list)
    switches_stack: bool = False


ASM = {
    "septum_start32": AsmNode(0, "32-bit code without stack use; far-jumps to "
                              "septum_start64", ["septum_start64"]),
    "septum_start64": AsmNode(0, "sets RSP to the top of the boot stack, "
                              "then calls kernel_main"),
    "septum_ap_start32": AsmNode(0, "32-bit code without stack use; far-jumps "
                                 "to septum_ap_start64", ["septum_ap_start64"]),
    "septum_ap_start64": AsmNode(0, "sets RSP to the AP's boot stack "
                                 "(septum_ap_stack), then calls "
                                 "septum_ap_main"),
    "septum_vmexit_stub": AsmNode(0, "pushes the guest registers into the "
                                  "subject's register frame (host RSP, "
                                  "regs.rs), not onto a stack, then sets RSP "
                                  "to the top of the exit stack (the word "
                                  "after the frame) and calls septum_vmexit; "
                                  "falls through to septum_vmx_enter",
                                  ["septum_vmx_enter"]),
    "septum_vmx_enter": AsmNode(0, "sets RSP to the loaded subject's register "
                                "frame, pops it and enters the guest; on "
                                "failure it sets RSP to the top of the exit "
                                "stack (the word after the frame) and calls "
                                "septum_vmentry_failed there",
                                switches_stack=True),
    "septum_interrupt_stubs": AsmNode(8, "one push of the vector per stub, "
                                      "then septum_interrupt_common: XCHG, "
                                      "BTS, POP, IRETQ; no call"),
}

# A root-mode exception: the CPU pushes SS, RSP, RFLAGS, CS, RIP (40 bytes;
# the stack is 8-aligned, so no alignment padding in 64-bit mode); the
# stubs' pushes (error code or its stand-in, vector) are counted from their
# instructions, and `and $-16, %rsp` in septum_exception_common may drop 8.
EXCEPTION_CPU_FRAME = 40


class GateError(Exception):
    """The gate failed; the message says why."""


# ---------------------------------------------------------------- ELF ----

@dataclass
class Section:
    name: str
    kind: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int


@dataclass
class Symbol:
    name: str
    value: int
    size: int
    kind: int
    shndx: int


class Elf:
    """Just enough of ELF64 little-endian: sections, symbols, memory."""

    def __init__(self, path: Path):
        self.data = path.read_bytes()
        if self.data[:4] != b"\x7fELF" or self.data[4] != 2 or self.data[5] != 1:
            raise GateError(f"{path}: not a little-endian ELF64 file")
        (shoff,) = struct.unpack_from("<Q", self.data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", self.data, 0x3A)
        raw = []
        for i in range(shnum):
            raw.append(struct.unpack_from("<IIQQQQIIQQ", self.data, shoff + i * shentsize))
        names = raw[shstrndx]

        def cstr(offset: int) -> str:
            end = self.data.index(b"\0", offset)
            return self.data[offset:end].decode()

        self.sections = [
            Section(cstr(names[4] + r[0]), r[1], r[2], r[3], r[4], r[5], r[6]) for r in raw
        ]
        # Read-only loaded ranges, from the program headers (what is mapped
        # without write permission), not from section flags.
        (phoff,) = struct.unpack_from("<Q", self.data, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", self.data, 0x36)
        self.readonly: list[tuple[int, int]] = []
        for i in range(phnum):
            kind, flags, _, vaddr, _, filesz, _, _ = struct.unpack_from(
                "<IIQQQQQQ", self.data, phoff + i * phentsize)
            if kind == 1 and not flags & 2:  # PT_LOAD without PF_W
                self.readonly.append((vaddr, vaddr + filesz))
        self.symbols: list[Symbol] = []
        for sec in self.sections:
            if sec.kind != 2:  # SHT_SYMTAB
                continue
            strtab = self.sections[sec.link]
            for off in range(sec.offset, sec.offset + sec.size, 24):
                name, info, _, shndx, value, size = struct.unpack_from("<IBBHQQ", self.data, off)
                if name:
                    self.symbols.append(
                        Symbol(cstr(strtab.offset + name), value, size, info & 0xF, shndx)
                    )

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def loaded(self) -> list[Section]:
        """Sections with file contents that are loaded (SHF_ALLOC, PROGBITS)."""
        return [s for s in self.sections if s.flags & 2 and s.kind == 1]

    def read_u64(self, addr: int) -> int | None:
        for s in self.loaded():
            if s.addr <= addr and addr + 8 <= s.addr + s.size:
                return struct.unpack_from("<Q", self.data, s.offset + addr - s.addr)[0]
        return None

    def stack_sizes(self) -> dict[int, int]:
        """`.stack_sizes`: (u64 function address, ULEB128 size) records."""
        sec = self.section(".stack_sizes")
        if sec is None:
            raise GateError("the ELF has no .stack_sizes section (built without "
                            "-Z emit-stack-sizes?)")
        sizes: dict[int, int] = {}
        pos, end = sec.offset, sec.offset + sec.size
        while pos < end:
            (addr,) = struct.unpack_from("<Q", self.data, pos)
            pos += 8
            value, shift = 0, 0
            while True:
                byte = self.data[pos]
                pos += 1
                value |= (byte & 0x7F) << shift
                shift += 7
                if byte < 0x80:
                    break
            sizes[addr] = value
        return sizes


# ------------------------------------------------------------ analysis ---

@dataclass
class Function:
    name: str  # demangled
    start: int
    end: int
    frame: int | None = None
    frame_source: str = ""
    direct: set[str] = field(default_factory=set)
    indirect_sites: list[str] = field(default_factory=list)


INSN = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)(?:\s+(.*))?$")
TARGET = re.compile(r"^(?:0x)?([0-9a-f]+)(?:\s+<.*>)?$")
RIP_REL = re.compile(r"(-?\d+)\(%rip\).*#\s+0x([0-9a-f]+)")
SETS_RSP = re.compile(r",\s*%rsp$")
IMM = re.compile(r"\$(-?(?:0x[0-9a-f]+|\d+))")
TABLE = re.compile(r"^\*(-?\d+)\(,%\w+,8\)$")


def demangle(names: list[str]) -> dict[str, str]:
    out = subprocess.run(["llvm-cxxfilt"], input="\n".join(names), capture_output=True,
                         text=True, check=True).stdout.splitlines()
    # v0 names keep a hash-free form; strip the crate disambiguator if any.
    return {n: re.sub(r"\[[0-9a-f]+\]", "", d) for n, d in zip(names, out)}


def load_functions(elf: Elf) -> list[Function]:
    text = elf.section(".text")
    if text is None:
        raise GateError("the ELF has no .text section")
    syms = [s for s in elf.symbols
            if text.addr <= s.value < text.addr + text.size and s.kind in (0, 2)]
    by_addr: dict[int, Symbol] = {}
    for s in sorted(syms, key=lambda s: (s.value, -s.size)):
        by_addr.setdefault(s.value, s)
    starts = sorted(by_addr)
    names = demangle([by_addr[a].name for a in starts])
    functions = []
    for i, addr in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else text.addr + text.size
        functions.append(Function(names[by_addr[addr].name], addr, end))
    return functions


def disassemble(elf_path: Path) -> list[tuple[int, str, str]]:
    out = subprocess.run(
        ["llvm-objdump", "-d", "--no-show-raw-insn", str(elf_path)],
        capture_output=True, text=True, check=True).stdout
    insns = []
    for line in out.splitlines():
        m = INSN.match(line)
        if m:
            insns.append((int(m.group(1), 16), m.group(2), (m.group(3) or "").strip()))
    return insns


def owner(functions: list[Function], addr: int) -> Function | None:
    lo, hi = 0, len(functions)
    while lo < hi:
        mid = (lo + hi) // 2
        if functions[mid].end <= addr:
            lo = mid + 1
        else:
            hi = mid
    if lo < len(functions) and functions[lo].start <= addr < functions[lo].end:
        return functions[lo]
    return None

CALLEE_SAVED = {
    "rbx": ("rbx", "ebx", "bx", "bl", "bh"),
    "rbp": ("rbp", "ebp", "bp", "bpl"),
    **{f"r{n}": (f"r{n}", f"r{n}d", f"r{n}w", f"r{n}b") for n in (12, 13, 14, 15)},
}
IMPLICIT_WRITERS = {"rbx": ("cpuid",), "rbp": ("leave", "enter")}
# RAX is caller-saved and written implicitly by many instructions: a call
# through it is resolved only when every instruction between the load and
# the call is a plain `mov` or `lea` (explicit destination), so no call and
# no implicit write can come between (LLVM loads memcpy's GOT entry into
# RAX this way for a large struct copy).
CALLER_SAVED = {"rax": ("rax", "eax", "ax", "al", "ah")}
SCAN_REGS = {**CALLEE_SAVED, **CALLER_SAVED}


def branch_targets(body: list[tuple[int, str, str]], elf: Elf, start: int, end: int) -> set[int]:
    """Addresses inside the function that a jump can reach: direct jump
    targets and the entries of its jump tables (read while they point into
    the function, which may over-read: more targets is the safe side)."""
    targets: set[int] = set()
    for _, mnemonic, ops in body:
        if not mnemonic.startswith("j"):
            continue
        if (m := TARGET.match(ops)) is not None:
            targets.add(int(m.group(1), 16))
        elif (m := TABLE.match(ops)) is not None:
            entry = int(m.group(1)) & 0xFFFF_FFFF_FFFF_FFFF
            while (value := elf.read_u64(entry)) is not None and start <= value < end:
                targets.add(value)
                entry += 8
    return targets


def resolve_register_calls(
    body: list[tuple[int, str, str]], elf: Elf, by_start: dict[int, Function],
    start: int, end: int,
) -> dict[int, int]:
    """Calls through a register that holds a function address.

    LLVM often loads a function's address (an immediate, a RIP-relative
    `lea`, or a GOT entry in read-only data) into a callee-saved register
    and calls through it several times. Such a call is resolved when the
    nearest earlier write of the register is such a load of a function
    start and no jump target lies between the load and the call (straight-
    line code; calls in between keep a callee-saved register). The write
    may also be a `movq` from another such register, followed back in the
    same way; RAX counts only with nothing but `mov`/`lea` between its load
    and its use (`CALLER_SAVED`). Anything else stays an indirect call (and
    must be allowed)."""
    targets = branch_targets(body, elf, start, end)
    sites: dict[int, int] = {}
    for index, (addr, mnemonic, ops) in enumerate(body):
        m = re.fullmatch(r"\*%(\w+)", ops)
        if not mnemonic.startswith(("call", "jmp")) or not m or m.group(1) not in SCAN_REGS:
            continue
        reg = m.group(1)
        back = index
        while True:  # follows register copies (`movq %rax, %r14`) back
            value, copied = _load_before(body, back, reg, targets, elf)
            if copied is None:
                break
            back, reg = copied
        if value in by_start:
            sites[addr] = value
    return sites


def _load_before(body: list[tuple[int, str, str]], index: int, reg: str,
                 targets: set[int], elf: "Elf") -> tuple[int | None, tuple[int, str] | None]:
    """The value the nearest write of `reg` before `body[index]` loads, if
    it is a constant (an immediate, a RIP-relative `lea`, a read-only GOT
    entry): `(value, None)`; or, if that write copies another scanned
    register, `(None, (position of the copy, that register))`; else
    `(None, None)`."""
    pattern = re.compile(r"%(" + "|".join(SCAN_REGS[reg]) + r")\b")
    for back in range(index - 1, -1, -1):
        b_addr, b_mnemonic, b_ops = body[back]
        if body[back + 1][0] in targets:
            return None, None  # another path joins: give up
        if reg in CALLER_SAVED and not b_mnemonic.startswith(("mov", "lea")):
            return None, None  # a call or an implicit write may come between
        if b_mnemonic.startswith(IMPLICIT_WRITERS.get(reg, ())) or (
                b_mnemonic.startswith(("xchg", "xadd", "cmpxchg"))
                and pattern.search(b_ops)):
            return None, None
        dest = b_ops.split("#", 1)[0].rsplit(",", 1)[-1].strip()
        if not re.fullmatch(pattern, dest) or b_mnemonic.startswith(
                ("cmp", "test", "push", "bt", "call", "jmp")):
            continue
        imm = IMM.match(b_ops)
        rip = RIP_REL.search(b_ops)
        if b_mnemonic.startswith("mov") and imm and dest == f"%{reg}":
            return int(imm.group(1), 0) & 0xFFFF_FFFF_FFFF_FFFF, None
        if b_mnemonic.startswith("mov") and imm and b_mnemonic == "movl":
            return int(imm.group(1), 0) & 0xFFFF_FFFF, None
        if b_mnemonic.startswith("lea") and rip:
            return int(rip.group(2), 16), None
        if b_mnemonic == "movq" and rip and b_ops.startswith(rip.group(1) + "(%rip)"):
            where = int(rip.group(2), 16)
            if any(lo <= where and where + 8 <= hi for lo, hi in elf.readonly):
                return elf.read_u64(where), None
            return None, None
        copy = re.fullmatch(r"%(\w+),\s*%" + reg, b_ops.strip())
        if b_mnemonic == "movq" and copy and copy.group(1) in SCAN_REGS:
            return None, (back, copy.group(1))
        return None, None
    return None, None


@dataclass
class Graph:
    functions: dict[str, Function]
    address_taken: set[str]


def build_graph(elf: Elf, elf_path: Path) -> Graph:
    functions = load_functions(elf)
    by_start = {f.start: f for f in functions}
    sizes = elf.stack_sizes()
    for f in functions:
        if f.start in sizes:
            f.frame, f.frame_source = sizes[f.start], ".stack_sizes"

    def function_at(value: int) -> Function | None:
        return by_start.get(value)

    taken: set[str] = set()
    # Function addresses stored in loaded data (vtables, tables).
    for sec in elf.loaded():
        if sec.flags & 4:  # executable: scanned as instructions below
            continue
        for off in range(0, sec.size - 7, 8):
            (value,) = struct.unpack_from("<Q", elf.data, sec.offset + off)
            if (f := function_at(value)) is not None:
                taken.add(f.name)

    # Stack bytes of stubs without .stack_sizes: per straight-line segment
    # (split at unconditional jumps), every push / sub / and counted; the
    # largest segment is the frame.
    asm_segment: dict[str, int] = {}
    asm_pushes: dict[str, int] = {}
    last: dict[str, str] = {}
    insns = disassemble(elf_path)
    per_function: dict[str, list[tuple[int, str, str]]] = {}
    for insn in insns:
        if (f := owner(functions, insn[0])) is not None:
            per_function.setdefault(f.name, []).append(insn)
    resolved: dict[int, int] = {}
    for f in functions:
        if f.name in per_function and f.name != "septum_start32":
            resolved.update(
                resolve_register_calls(per_function[f.name], elf, by_start, f.start, f.end))
    for addr, mnemonic, ops in insns:
        f = owner(functions, addr)
        if f is None:
            continue
        if f.name == "septum_start32":
            continue  # 32-bit code, disassembled as 64-bit: see ASM
        if not mnemonic.startswith(("nop", "int3")):  # alignment padding
            last[f.name] = mnemonic
        rip = RIP_REL.search(ops)
        is_call = mnemonic.startswith("call")
        is_jump = mnemonic.startswith("jmp")
        for imm in IMM.findall(ops):
            if (g := function_at(int(imm, 0) & 0xFFFF_FFFF_FFFF_FFFF)) is not None:
                taken.add(g.name)
        if rip and mnemonic.startswith("lea"):
            if (g := function_at(int(rip.group(2), 16))) is not None:
                taken.add(g.name)
        if f.frame is None:
            grow = 0
            if mnemonic.startswith("push"):
                grow = 8
            elif mnemonic.startswith("sub") and SETS_RSP.search(ops):
                m = IMM.match(ops)
                if not m:
                    raise GateError(f"{f.name}: cannot size `{mnemonic} {ops}`")
                grow = int(m.group(1), 0)
            elif mnemonic.startswith("and") and SETS_RSP.search(ops):
                grow = 8  # realignment to 16 of an 8-aligned RSP
            elif SETS_RSP.search(ops) and not mnemonic.startswith(("lea", "add")) \
                    and f.name not in ASM:
                raise GateError(f"{f.name}: sets RSP (`{mnemonic} {ops}`); "
                                "describe it in ASM")
            segment = asm_segment.get(f.name, 0) + grow
            asm_pushes[f.name] = max(asm_pushes.get(f.name, 0), segment)
            asm_segment[f.name] = 0 if mnemonic.startswith("jmp") else segment
        if not (is_call or is_jump):
            continue
        if ops.startswith("*"):
            if addr in resolved:
                f.direct.add(by_start[resolved[addr]].name)
            elif rip and is_call:
                # Through the GOT: the target is in the image.
                value = elf.read_u64(int(rip.group(2), 16))
                g = function_at(value) if value is not None else None
                if g is None:
                    raise GateError(f"{f.name}: call through {ops} reaches no function")
                f.direct.add(g.name)
            elif (m := TABLE.match(ops)) and is_jump:
                # A jump table: its first entry must lie in the function.
                first = elf.read_u64(int(m.group(1)) & 0xFFFF_FFFF_FFFF_FFFF)
                if first is None or not f.start <= first < f.end:
                    raise GateError(f"{f.name}: indirect jump {ops} leaves the function")
            else:
                f.indirect_sites.append(f"{addr:#x}: {mnemonic} {ops}")
            continue
        m = TARGET.match(ops)
        if not m:
            if mnemonic.startswith("ljmp"):
                continue
            raise GateError(f"{f.name}: cannot read `{mnemonic} {ops}`")
        target = int(m.group(1), 16)
        g = owner(functions, target)
        if g is None:
            raise GateError(f"{f.name}: {mnemonic} to {target:#x}, outside every function")
        if g is f and not (is_call and target == f.start):
            continue  # a branch inside the function
        f.direct.add(g.name)

    table = {f.name: f for f in functions}
    for name, node in ASM.items():
        f = table.get(name)
        if f is None:
            raise GateError(f"ASM names {name}, which is not in the ELF")
        f.frame, f.frame_source = node.frame, "ASM table"
        f.direct.update(node.edges)
    for f in functions:
        if f.frame is None and f.name in asm_pushes:
            f.frame, f.frame_source = asm_pushes[f.name], "its instructions"
        elif f.frame is None and not f.direct and not f.indirect_sites:
            f.frame, f.frame_source = 0, "its instructions (no push)"
    # Falling off the end of a stub continues in the next symbol.
    order = sorted(functions, key=lambda f: f.start)
    for prev, nxt in zip(order, order[1:]):
        ends = last.get(prev.name, "ud2").startswith(("jmp", "ret", "iret", "ud2"))
        if prev.frame_source.startswith("its instructions") and not ends:
            prev.direct.add(nxt.name)
    for name in NOT_CALLED:
        taken.discard(name)
    return Graph(table, taken)


@dataclass
class Worst:
    bytes: int
    path: list[tuple[str, int]]


class Walker:
    """Depth-first walk: the worst case per function and indirect budget."""

    def __init__(self, graph: Graph):
        self.g = graph
        allowed = [(re.compile(p), why) for p, why in INDIRECT_ALLOWED]
        for f in graph.functions.values():
            if f.indirect_sites and not any(p.search(f.name) for p, _ in allowed):
                raise GateError(
                    f"indirect call in {f.name} ({f.indirect_sites[0]}) is not in "
                    "INDIRECT_ALLOWED")
        self.memo: dict[tuple[str, int], Worst] = {}
        # The current path; None marks an indirect call.
        self.on_path: list[str | None] = []

    def cost(self, name: str, budget: int) -> Worst:
        """Bytes below the caller's RSP while `name` (called) runs, with at
        most `budget` more indirect calls on the path."""
        f = self.g.functions.get(name)
        if f is None:
            raise GateError(f"call to unknown function {name}")
        if name in ASM and ASM[name].switches_stack:
            return Worst(8, [(name + " (switches to the exit stack)", 8)])
        if f.frame is None:
            raise GateError(f"{name} has no stack size (not in .stack_sizes, not in ASM)")
        # A cycle through an indirect call is bounded by the budget; any
        # other cycle is recursion.
        since = self.on_path
        if None in self.on_path:
            since = self.on_path[len(self.on_path) - self.on_path[::-1].index(None):]
        if name in since:
            cycle = [n for n in since[since.index(name):] if n] + [name]
            raise GateError("recursion: " + " -> ".join(cycle))
        key = (name, budget)
        if key in self.memo:
            return self.memo[key]
        self.on_path.append(name)
        own = f.frame + 8
        best = Worst(own, [(name, own)])
        steps = [(c, budget, "") for c in sorted(f.direct)]
        if f.indirect_sites and budget > 0:
            steps += [(c, budget - 1, " (indirect)") for c in sorted(self.g.address_taken)]
        for callee, left, how in steps:
            if how:
                self.on_path.append(None)
            sub = self.cost(callee, left)
            if how:
                self.on_path.pop()
                sub = Worst(sub.bytes, [(sub.path[0][0] + how, sub.path[0][1])] + sub.path[1:])
            if own + sub.bytes > best.bytes:
                best = Worst(own + sub.bytes, [(name, own)] + sub.path)
        self.on_path.pop()
        self.memo[key] = best
        return best

    def root(self, name: str, below: int) -> Worst:
        """A stack root entered with `below` bytes already used, not called."""
        f = self.g.functions[name]
        sub = [self.cost(c, INDIRECT_DEPTH) for c in sorted(f.direct)]
        deepest = max(sub, key=lambda w: w.bytes, default=Worst(0, []))
        own = below + (f.frame or 0)
        return Worst(own + deepest.bytes, [(name, own)] + deepest.path)


def symbol(elf: Elf, name: str) -> int:
    for s in elf.symbols:
        if s.name == name:
            return s.value
    raise GateError(f"symbol {name} not found (kernel/src/arch/x86_64/boot.rs or "
                    "percpu.rs defines it)")


def analyse(elf_path: Path, verbose: bool) -> int:
    elf = Elf(elf_path)
    graph = build_graph(elf, elf_path)
    walker = Walker(graph)
    stacks = {
        "boot": symbol(elf, "septum_boot_stack_top") - symbol(elf, "septum_boot_stack_bottom"),
        "exit": symbol(elf, "septum_exit_stack_top") - symbol(elf, "septum_exit_stack_bottom"),
        "ist": (symbol(elf, "septum_ist_double_fault_top")
                - symbol(elf, "septum_ist_double_fault_bottom")),
    }
    stacks["ap boot"] = stacks["exit"] - AP_BOOT_STACK_GAP
    boot = walker.root("septum_start64", 0)
    ap_boot = walker.root("septum_ap_start64", 0)
    exit_path = walker.root("septum_vmexit_stub", 0)
    enter = walker.root("septum_vmx_enter", 0)
    if enter.bytes > exit_path.bytes:
        exit_path = enter
    exception = walker.root("septum_exception_stubs", EXCEPTION_CPU_FRAME)
    # A root-mode interrupt comes only inside take_requested's window (on
    # the exit path, or on a boot path that idles before its first entry;
    # no nesting: the gate clears IF).
    interrupt = walker.root("septum_interrupt_stubs", EXCEPTION_CPU_FRAME)
    checks = [
        ("boot path", boot.bytes, "boot"),
        ("exit path", exit_path.bytes, "exit"),
        ("boot path + root-mode exception", boot.bytes + exception.bytes, "boot"),
        ("AP boot path", ap_boot.bytes, "ap boot"),
        ("AP boot path + root-mode exception", ap_boot.bytes + exception.bytes, "ap boot"),
        ("exit path + root-mode exception", exit_path.bytes + exception.bytes, "exit"),
        ("exit path + root-mode interrupt", exit_path.bytes + interrupt.bytes, "exit"),
        ("boot path + root-mode interrupt", boot.bytes + interrupt.bytes, "boot"),
        ("AP boot path + root-mode interrupt", ap_boot.bytes + interrupt.bytes, "ap boot"),
        ("root-mode exception on an IST stack", exception.bytes, "ist"),
    ]
    print(f"stack depth of {elf_path}")
    print(f"  stacks: boot {stacks['boot']} B, exit {stacks['exit']} B, "
          f"IST {stacks['ist']} B each; indirect calls per path <= {INDIRECT_DEPTH}; "
          f"{len(graph.functions)} functions, "
          f"{len(graph.address_taken)} reachable by indirect calls")
    failed = False
    for label, used, stack in checks:
        ok = used <= stacks[stack]
        failed |= not ok
        print(f"  {'ok  ' if ok else 'FAIL'} {label}: {used} B of {stacks[stack]} B")
    for label, worst in (("boot", boot), ("AP boot", ap_boot), ("exit", exit_path),
                         ("exception", exception)):
        print(f"  worst {label} path (frame, running total):")
        total = 0
        for name, used in worst.path:
            total += used
            print(f"    {used:6} {total:6}  {name}")
    if verbose:
        print("  reachable by indirect calls: " + ", ".join(sorted(graph.address_taken)))
    return 1 if failed else 0


def self_test(elf_path: Path) -> int:
    """Inject each failure the gate must catch into the real graph."""
    elf = Elf(elf_path)

    def recursion(g: Graph) -> None:
        g.functions["septum_kernel::console::print_line"].direct.add("septum_vmexit")

    def indirect(g: Graph) -> None:
        g.functions["septum_vmexit"].indirect_sites.append("injected: callq *%rax")

    def unknown_frame(g: Graph) -> None:
        g.functions["septum_vmexit"].frame = None

    def huge_frame(g: Graph) -> None:
        g.functions["septum_vmexit"].frame = 1 << 20

    failures = 0
    print("self-test (each injected fault must be caught):")
    for label, inject in (("recursion", recursion), ("unlisted indirect call", indirect),
                          ("unknown frame size", unknown_frame),
                          ("frame larger than the stack", huge_frame)):
        graph = build_graph(elf, elf_path)
        inject(graph)
        try:
            walker = Walker(graph)
            worst = walker.root("septum_vmexit_stub", 0).bytes
            exit_stack = (symbol(elf, "septum_exit_stack_top")
                          - symbol(elf, "septum_exit_stack_bottom"))
            caught = f"{worst} B > {exit_stack} B" if worst > exit_stack else None
        except GateError as error:
            caught = str(error)
        failures += caught is None
        print(f"  {'ok  ' if caught else 'FAIL'} {label}: {caught or 'not caught'}")
    return 1 if failures else 0


def build(spec: Path, features: str | None, target_dir: Path, toolchain: str) -> Path:
    if not spec.is_absolute():
        raise GateError("--spec must be an absolute path")
    env = dict(os.environ)
    env.pop("CARGO_TARGET_DIR", None)
    env["SEPTUM_SPEC"] = str(spec)
    # RUSTFLAGS replaces the target rustflags of .cargo/config.toml: repeat them.
    env["RUSTFLAGS"] = ("-C relocation-model=static -C code-model=kernel "
                        "-Z emit-stack-sizes")
    cmd = ["cargo", f"+{toolchain}", "build", "--release",
           "-Z", "build-std=core,compiler_builtins",
           "-Z", "build-std-features=compiler-builtins-mem",
           "--target", "x86_64-unknown-none", "--target-dir", str(target_dir)]
    if features:
        cmd += ["--features", features]
    version = subprocess.run(["rustc", f"+{toolchain}", "--version"], capture_output=True,
                             text=True, check=True).stdout.strip()
    print(f"$ {' '.join(cmd)}   ({version})", flush=True)
    if subprocess.run(cmd, cwd=KERNEL_DIR, env=env).returncode != 0:
        raise GateError("the nightly kernel build failed")
    return target_dir / "x86_64-unknown-none" / "release" / "septum-kernel"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--spec", type=Path, help="absolute path of a composed spec.rs: build, "
                      "then analyse")
    what.add_argument("--elf", type=Path, help="analyse this kernel ELF (built with "
                      "-Z emit-stack-sizes)")
    parser.add_argument("--features", help="kernel cargo features for --spec")
    parser.add_argument("--target-dir", type=Path,
                        default=KERNEL_DIR / "target" / "stack-depth")
    parser.add_argument("--toolchain", default="nightly")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also list the functions indirect calls may reach")
    parser.add_argument("--self-test", action="store_true",
                        help="also check that the gate catches injected faults")
    args = parser.parse_args()
    try:
        elf = args.elf or build(args.spec, args.features, args.target_dir.resolve(),
                                args.toolchain)
        status = analyse(elf, args.verbose)
        if args.self_test and self_test(elf) != 0:
            status = 1
        return status
    except GateError as error:
        print(f"stack depth: error: {error}", file=sys.stderr)
        return 1
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"stack depth: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
