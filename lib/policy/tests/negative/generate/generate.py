#!/usr/bin/env python3
"""Writes the negative test policies of the validation rules.

Usage: python3 generate.py   (from anywhere; writes ../<rule-id>.xml and
../common/hardware.xml next to this script's folder).

Each case in cases.py is an XML text with markers `$1`, `$2`, ... placed
right before the attribute (or the `<` of the element) a diagnostic must
point at, plus the exact message. The expected line and column come from the
marker position, not from running the rules, so the golden files are an
independent statement of where each diagnostic belongs. A marker before
`name="` points at the attribute's value, where the loader's spans start.
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(HERE)

HW = '<hardware href="common/hardware.xml"/>'
KERNEL = '<kernel debugConsole="com2"/>'

TESTS = {}


def test(rule, xml, *diags):
    """diags: (marker, severity, message) or (marker, message) for errors."""
    assert rule not in TESTS, rule
    norm = []
    for d in diags:
        if len(d) == 2:
            norm.append((d[0], "error", d[1]))
        else:
            norm.append(d)
    TESTS[rule] = (xml, norm)


def indent(text, n):
    pad = " " * n
    return "\n".join(pad + line if line.strip() else line for line in text.strip("\n").split("\n"))


def subj(name, body="", cpu=None, attrs=""):
    cpu_attr = f' cpu="{cpu}"' if cpu is not None else ""
    extra = f" {attrs}" if attrs else ""
    head = f'<subject name="{name}" profile="native" binary="{name}"{cpu_attr}{extra}'
    if not body.strip():
        return head + "/>"
    return head + ">\n" + indent(body, 2) + "\n</subject>"


def auto_sched(subjects):
    """One partition per subject on its CPU; one major frame, 60 ticks per CPU."""
    per_cpu = {}
    for name, cpu in subjects:
        per_cpu.setdefault(cpu, []).append(name)
    parts = "\n".join(
        f'<partition name="p_{n}"><group><subject name="{n}"/></group></partition>'
        for n, _ in subjects
    )
    cpus = []
    for cpu in sorted(per_cpu):
        names = per_cpu[cpu]
        ticks = 60 // len(names)
        frames = "\n".join(f'<minorFrame partition="p_{n}" ticks="{ticks}"/>' for n in names)
        cpus.append(f'<cpu id="{cpu}">\n{indent(frames, 2)}\n</cpu>')
    major = "<majorFrame>\n" + indent("\n".join(cpus), 2) + "\n</majorFrame>"
    return (
        '<scheduling tickRate="1000">\n  <partitions>\n'
        + indent(parts, 4)
        + "\n  </partitions>\n"
        + indent(major, 2)
        + "\n</scheduling>"
    )


def system(subjects, memory="", events="", channels="", scheduling=None, hardware=HW,
           kernel=KERNEL, sched_subjects=None, flows=""):
    """subjects: list of (name, cpu, xml) tuples."""
    parts = [hardware, kernel]
    if memory.strip():
        parts.append("<memory>\n" + indent(memory, 2) + "\n</memory>")
    if events.strip():
        parts.append("<events>\n" + indent(events, 2) + "\n</events>")
    if channels.strip():
        parts.append("<channels>\n" + indent(channels, 2) + "\n</channels>")
    parts.append("<subjects>\n" + indent("\n".join(x for _, _, x in subjects), 2) + "\n</subjects>")
    if scheduling is None:
        scheduling = auto_sched(sched_subjects or [(n, c) for n, c, _ in subjects])
    parts.append(scheduling)
    if flows.strip():
        parts.append("<flows>\n" + indent(flows, 2) + "\n</flows>")
    return "<system>\n" + indent("\n".join(parts), 2) + "\n</system>\n"


def S(name, body="", cpu=0, attrs="", cpu_attr=None):
    """A subject tuple; cpu_attr None means: write cpu only when not 0."""
    shown = cpu if cpu != 0 else None
    if cpu_attr is not None:
        shown = cpu_attr
    return (name, cpu, subj(name, body, shown, attrs))


def mem(name, size="0x1000", extra=""):
    e = f" {extra}" if extra else ""
    return f'<memory name="{name}" size="{size}" caching="WB"{e}/>'


def maps(*items):
    return "<memory>\n" + indent("\n".join(items), 2) + "\n</memory>"


def mp(logical, physical=None, extra='writable="true"'):
    physical = physical or logical
    e = f" {extra}" if extra else ""
    return f'<map logical="{logical}" physical="{physical}"{e}/>'


def ev_src(*items):
    return (
        "<events>\n  <source>\n    <group name=\"vmcall\">\n"
        + indent("\n".join(items), 6)
        + "\n    </group>\n  </source>\n</events>"
    )


def ev_tgt(*items):
    return "<events>\n  <target>\n" + indent("\n".join(items), 4) + "\n  </target>\n</events>"


def ev_both(src, tgt):
    return (
        "<events>\n  <source>\n    <group name=\"vmcall\">\n"
        + indent("\n".join(src), 6)
        + "\n    </group>\n  </source>\n  <target>\n"
        + indent("\n".join(tgt), 4)
        + "\n  </target>\n</events>"
    )


def chans(*items):
    return "<channels>\n" + indent("\n".join(items), 2) + "\n</channels>"


def devs(*items):
    return "<devices>\n" + indent("\n".join(items), 2) + "\n</devices>"


def body(*parts):
    return "\n".join(parts)


exec(open(os.path.join(HERE, "cases.py")).read())


def render(rule, xml, diags):
    lines_before = len(diags)
    text = xml
    positions = {}
    for marker, _, _ in diags:
        idx = text.find(marker)
        assert idx >= 0, (rule, marker)
        text = text[:idx] + text[idx + len(marker):]
        # later markers shift left
        for k, v in positions.items():
            if v > idx:
                positions[k] = v - len(marker)
        positions[marker] = idx
    assert "$" not in text, (rule, "stray marker")
    out = []
    for marker, sev, msg in diags:
        idx = positions[marker]
        m = re.match(r'[A-Za-z_]+="', text[idx:])
        if m:
            idx += m.end()
        line = text.count("\n", 0, idx) + 1 + lines_before
        col = idx - (text.rfind("\n", 0, idx) + 1) + 1
        out.append(f"<!-- expect: {rule}.xml:{line}:{col}: {sev}[{rule}]: {msg} -->")
    return "\n".join(out) + "\n" + text


def main():
    os.makedirs(os.path.join(OUT, "common"), exist_ok=True)
    for name, text in COMMON.items():
        with open(os.path.join(OUT, "common", name), "w") as f:
            f.write(text)
    for rule, (xml, diags) in sorted(TESTS.items()):
        with open(os.path.join(OUT, rule + ".xml"), "w") as f:
            f.write(render(rule, xml, diags))
    print(len(TESTS), "negative tests written to", OUT)


main()
