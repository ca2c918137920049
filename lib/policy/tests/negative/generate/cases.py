# The negative test cases, one per rule id; read by generate.py.
# test(rule_id, policy_xml, (marker, [severity,] message)...)

HARDWARE = """<hardware>
  <processor cpuCores="2" speed="10000" vmxTimerRate="0">
    <cpu apicId="0"/>
    <cpu apicId="2"/>
  </processor>
  <memory>
    <memoryBlock allocatable="false" name="base_ram" physicalAddress="16#0000#" size="16#0009_f000#"/>
    <memoryBlock allocatable="true" name="ram" physicalAddress="16#0010_0000#" size="16#0fef_0000#"/>
  </memory>
  <devices pciConfigAddress="16#e000_0000#" pciConfigSize="16#1000_0000#">
    <device name="board">
      <capabilities>
        <capability name="systemboard"/>
      </capabilities>
    </device>
    <device name="com1">
      <irq name="irq" number="4"/>
      <ioPort name="ports" start="16#03f8#" end="16#03ff#"/>
    </device>
    <device name="com2">
      <irq name="irq" number="3"/>
      <ioPort name="ports" start="16#02f8#" end="16#02ff#"/>
    </device>
    <device name="com3">
      <ioPort name="ports" start="16#03e8#" end="16#03ef#"/>
    </device>
    <device name="nic">
      <pci bus="16#00#" device="16#03#" function="0"/>
      <irq name="irq" number="11"/>
      <memory name="mmio" physicalAddress="16#feb0_0000#" size="16#1000#" caching="UC"/>
    </device>
    <device name="nic2">
      <pci bus="16#00#" device="16#04#" function="0"/>
      <irq name="irq" number="16"/>
      <memory name="mmio" physicalAddress="16#feb1_0000#" size="16#1000#" caching="UC"/>
    </device>
    <device name="nic3">
      <pci bus="16#00#" device="16#05#" function="0"/>
      <irq name="irq" number="16"/>
      <memory name="mmio" physicalAddress="16#feb2_0000#" size="16#1000#" caching="UC"/>
    </device>
  </devices>
</hardware>
"""

COMMON = {"hardware.xml": HARDWARE}


def hw(*subs):
    """Inline hardware: HARDWARE with (old, new) replacements."""
    text = HARDWARE
    for old, new in subs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text.strip("\n")


A = [S("a")]


def one(subject_body="", memory="", events="", channels="", **kw):
    return system([S("a", subject_body)], memory=memory, events=events, channels=channels, **kw)


def buf_map(extra='writable="true"'):
    return maps(mp("buf", extra=extra))


# ------------------------------------------------------------------ names

test("names-region-duplicate",
     one(buf_map(), memory=mem("buf") + '\n<memory $1name="buf" size="0x1000" caching="WB"/>'),
     ("$1", 'memory region "buf" is defined more than once'))

test("names-event-duplicate",
     system([S("a", ev_src('<event id="1" logical="ping" physical="ping"/>')),
             S("b", ev_tgt('<event id="1" logical="ping" physical="ping"/>'))],
            events='<event name="ping" mode="async"/>\n<event $1name="ping" mode="async"/>'),
     ("$1", 'event "ping" is defined more than once'))

test("names-channel-duplicate",
     system([S("a", chans('<writer logical="out" physical="data"/>')),
             S("b", chans('<reader logical="in" physical="data"/>'))],
            channels='<channel name="data" size="0x1000"/>\n<channel $1name="data" size="0x1000"/>'),
     ("$1", 'channel "data" is defined more than once'))

test("names-subject-duplicate",
     system([S("a"), ("a", 0, '<subject $1name="a" profile="native" binary="a2"/>')],
            sched_subjects=[("a", 0)]),
     ("$1", 'subject "a" is defined more than once'))

test("names-partition-duplicate",
     system([S("a"), S("b")], scheduling="""<scheduling tickRate="1000">
  <partitions>
    <partition name="p_a"><group><subject name="a"/></group></partition>
    <partition $1name="p_a"><group><subject name="b"/></group></partition>
  </partitions>
  <majorFrame>
    <cpu id="0">
      <minorFrame partition="p_a" ticks="10"/>
    </cpu>
  </majorFrame>
</scheduling>"""),
     ("$1", 'partition "p_a" is defined more than once'))

test("names-device-duplicate",
     system(A, hardware=hw(('<device name="com3">', '<device $1name="com1">'))),
     ("$1", 'device "com1" is defined more than once'))

test("names-device-resource-duplicate",
     system(A, hardware=hw(('<ioPort name="ports" start="16#03f8#" end="16#03ff#"/>',
                            '<ioPort name="ports" start="16#03f8#" end="16#03fb#"/>\n'
                            '      <ioPort $1name="ports" start="16#03fc#" end="16#03ff#"/>'))),
     ("$1", 'device "com1" has more than one resource named "ports"'))

test("names-region-channel-clash",
     system([S("a", body(maps(mp("mem", "data")), chans('<writer logical="out" physical="data"/>'))),
             S("b", chans('<reader logical="in" physical="data"/>'))],
            memory=mem("data"), channels='<channel $1name="data" size="0x1000"/>'),
     ("$1", 'channel "data" has the same name as memory region "data"'))

test("names-case-only",
     system([S("a", maps(mp("x", "buf"), mp("y", "Buf"))
                    + "\n" + ev_src('<event id="1" logical="p1" physical="ping"/>',
                                    '<event id="2" logical="p2" physical="Ping"/>')),
             S("b", ev_tgt('<event id="1" logical="p1" physical="ping"/>',
                           '<event id="2" logical="p2" physical="Ping"/>'))],
            events='<event name="ping" mode="async"/>\n<event $1name="Ping" mode="async"/>',
            memory=mem("buf") + '\n<memory $2name="Buf" size="0x1000" caching="WB"/>'),
     ("$1", "warning", 'event "Ping" differs from event "ping" only in case'),
     ("$2", "warning", 'memory region "Buf" differs from memory region "buf" only in case'))

test("names-logical-duplicate",
     one(maps(mp("x", "buf1"), '<map $1logical="x" physical="buf2" writable="true"/>'),
         memory=mem("buf1") + "\n" + mem("buf2")),
     ("$1", 'subject "a" uses the logical name "x" more than once'))

test("names-device-grant-logical-duplicate",
     one(devs('<device logical="uart" physical="com1">\n'
              '  <ioPort logical="p" physical="ports"/>\n'
              '  <irq $1logical="p" physical="irq"/>\n'
              '</device>')),
     ("$1", 'device "uart" of subject "a" uses the logical name "p" more than once'))

test("names-unknown-region",
     one(maps('<map logical="buf" $1physical="nope" writable="true"/>')),
     ("$1", 'memory region "nope" is not defined'))

test("names-unknown-device",
     one(devs('<device logical="d" $1physical="nope"/>')),
     ("$1", 'device "nope" is not defined in the hardware description'))

test("names-unknown-device-ioport",
     one(devs('<device logical="u" physical="com1">\n  <ioPort logical="p" $1physical="nope"/>\n</device>')),
     ("$1", 'device "com1" has no I/O port range named "nope"'))

test("names-unknown-device-irq",
     one(devs('<device logical="u" physical="com1">\n  <irq logical="i" $1physical="nope"/>\n</device>')),
     ("$1", 'device "com1" has no IRQ named "nope"'))

test("names-unknown-device-memory",
     one(devs('<device logical="n" physical="nic">\n  <memory logical="m" $1physical="nope"/>\n</device>')),
     ("$1", 'device "nic" has no memory named "nope"'))

test("names-unknown-event",
     one(ev_both(['<event id="1" logical="e" $1physical="nope"/>'],
                 ['<event id="1" logical="f" $2physical="nada"/>'])),
     ("$1", 'event "nope" is not defined'),
     ("$2", 'event "nada" is not defined'))

test("names-unknown-channel",
     one(chans('<writer logical="out" $1physical="nope"/>')),
     ("$1", 'channel "nope" is not defined'))

test("names-unknown-subject",
     system(A, scheduling="""<scheduling tickRate="1000">
  <partitions>
    <partition name="p_a"><group><subject name="a"/><subject $1name="nope"/></group></partition>
  </partitions>
  <majorFrame>
    <cpu id="0">
      <minorFrame partition="p_a" ticks="10"/>
    </cpu>
  </majorFrame>
</scheduling>"""),
     ("$1", 'subject "nope" is not defined'))

test("names-unknown-partition",
     system(A, scheduling="""<scheduling tickRate="1000">
  <partitions>
    <partition name="p_a"><group><subject name="a"/></group></partition>
  </partitions>
  <majorFrame>
    <cpu id="0">
      <minorFrame partition="p_a" ticks="10"/>
      <minorFrame $1partition="nope" ticks="10"/>
    </cpu>
  </majorFrame>
</scheduling>"""),
     ("$1", 'partition "nope" is not defined'))

# ----------------------------------------------------------------- memory

test("memory-size-zero", one(buf_map(), memory='<memory name="buf" $1size="0" caching="WB"/>'),
     ("$1", 'memory region "buf" has size 0'))

test("memory-size-unaligned", one(buf_map(), memory='<memory name="buf" $1size="0x1800" caching="WB"/>'),
     ("$1", 'size 0x1800 (6.0 KiB) of memory region "buf" is not a multiple of 4 KiB'))

test("memory-size-too-large",
     one(buf_map(), memory='<memory name="buf" $1size="0x2_0000_0000_0000" caching="WB"/>'),
     ("$1", 'size 0x2000000000000 (512.0 TiB) of memory region "buf" exceeds the 48-bit physical address space'))

test("memory-physical-unaligned",
     one(buf_map(), memory='<memory name="buf" size="0x1000" caching="WB" $1physicalAddress="0x0100_0800"/>'),
     ("$1", 'physical address 0x1000800 of memory region "buf" is not 4 KiB aligned'))

test("memory-physical-end-overflow",
     one(buf_map(), memory='<memory name="buf" size="0x2000" caching="WB" $1physicalAddress="0xffff_ffff_ffff_f000"/>'),
     ("$1", 'memory region "buf" at 0xfffffffffffff000 with size 0x2000 (8.0 KiB) wraps around the end of the address space'))

test("memory-physical-too-high",
     one(buf_map(), memory='<memory name="buf" size="0x1000" caching="WB" $1physicalAddress="0x1_0000_0000_0000"/>'),
     ("$1", 'memory region "buf" ends at 0x1000000001000, beyond the 48-bit physical address space'))

test("memory-physical-overlap",
     one(maps(mp("r1"), mp("r2")),
         memory='<memory name="r1" size="0x2000" caching="WB" physicalAddress="0x0100_0000"/>\n'
                '<memory name="r2" size="0x1000" caching="WB" $1physicalAddress="0x0100_1000"/>'),
     ("$1", 'memory region "r2" overlaps memory region "r1"'))

test("memory-physical-device-overlap",
     one(buf_map(), memory='<memory name="buf" size="0x1000" caching="UC" $1physicalAddress="0xfeb0_0000"/>'),
     ("$1", 'memory region "buf" overlaps memory "mmio" of device "nic"'))

test("memory-physical-kernel-overlap",
     one(buf_map(), memory='<memory name="buf" size="0x1000" caching="WB" $1physicalAddress="0x0020_0000"/>'),
     ("$1", "memory region \"buf\" overlaps the kernel's read-only data window 0x200000..0x240000"))

test("memory-physical-low-overlap",
     one(buf_map(), memory='<memory name="buf" size="0x1000" caching="WB" $1physicalAddress="0x000a_0000"/>'),
     ("$1", 'memory region "buf" overlaps the first MiB (0x0..0x100000), which belongs to the firmware and the boot loader'))

test("memory-physical-outside-ram",
     one(buf_map(), memory='<memory name="buf" size="0x1000" caching="WB" $1physicalAddress="0x1000_0000"/>'),
     ("$1", 'memory region "buf" (0x10000000..0x10001000) is not inside an allocatable memory block'))

test("memory-demand-exceeds-ram",
     one(buf_map(), memory='<memory name="buf" $1size="0x1000_0000" caching="WB"/>'),
     ("$1", 'the system needs at least 0x10005000 (256.0 MiB) of memory, but the allocatable RAM above 0x300000 holds only 0xfcf0000 (252.9 MiB)'))

test("memory-region-unused",
     one(buf_map(), memory=mem("buf") + '\n<memory $1name="spare" size="0x1000" caching="WB"/>'),
     ("$1", "warning", 'memory region "spare" is not mapped by any subject'))

test("memory-region-mapped-twice",
     one(maps(mp("x", "buf"), '<map logical="y" $1physical="buf" writable="true"/>'), memory=mem("buf")),
     ("$1", 'memory region "buf" is mapped twice in subject "a"'))

test("memory-map-writable-executable",
     one(maps('<map logical="code" physical="code" writable="true" $1executable="true"/>'), memory=mem("code")),
     ("$1", 'mapping "code" of subject "a" is writable and executable'))

test("memory-writable-executable-unused",
     system([S("a", maps(mp("buf")), attrs='$1allowWritableExecutable="true"')], memory=mem("buf")),
     ("$1", "warning", 'subject "a" allows writable and executable mappings but has none'))

test("memory-executable-writable-elsewhere",
     system([S("a", maps(mp("code"))),
             S("b", maps('<map logical="code" physical="code" $1executable="true"/>'))],
            memory=mem("code")),
     ("$1", 'memory region "code" is executable in subject "b" and writable in subject "a"'))

test("memory-shared-writable",
     system([S("a", maps(mp("buf"))),
             S("b", maps('<map logical="buf" physical="buf" $1writable="true"/>'))],
            memory=mem("buf")),
     ("$1", "warning", 'memory region "buf" is writable in subject "a" and in subject "b"'))

test("memory-device-executable",
     one(devs('<device logical="n" physical="nic">\n'
              '  <memory logical="m" physical="mmio" $1executable="true"/>\n</device>')),
     ("$1", 'device memory "m" of subject "a" is mapped executable'))

test("memory-file-offset-beyond",
     one(buf_map(), memory='<memory name="buf" size="0x1000" caching="WB">\n'
                           '  <file href="blob.bin" $1offset="0x1000"/>\n</memory>'),
     ("$1", 'file offset 0x1000 is beyond the end of memory region "buf" of size 0x1000 (4.0 KiB)'))

test("memory-virtual-unaligned",
     one(maps('<map logical="buf" physical="buf" $1virtualAddress="0x4000_0800" writable="true"/>'), memory=mem("buf")),
     ("$1", 'virtual address 0x40000800 of "buf" in subject "a" is not 4 KiB aligned'))

test("memory-virtual-non-canonical",
     one(maps('<map logical="buf" physical="buf" $1virtualAddress="0x8000_0000_0000" writable="true"/>'), memory=mem("buf")),
     ("$1", '"buf" in subject "a" does not fit below 0x800000000000, the end of the lower canonical half'))

test("memory-virtual-overlap",
     one(maps('<map logical="b1" physical="b1" virtualAddress="0x4000_0000" writable="true"/>',
              '<map logical="b2" physical="b2" $1virtualAddress="0x4000_1000" writable="true"/>'),
         memory=mem("b1", "0x2000") + "\n" + mem("b2")),
     ("$1", '"b2" overlaps "b1" in the address space of subject "a"'))

test("memory-virtual-info-overlap",
     one(maps('<map logical="buf" physical="buf" $1virtualAddress="0x1_0000" writable="true"/>'), memory=mem("buf")),
     ("$1", '"buf" overlaps the subject info page (0x10000..0x11000) of subject "a"'))

test("memory-virtual-stack-overlap",
     one(maps('<map logical="buf" physical="buf" $1virtualAddress="0xf_f000" writable="true"/>'), memory=mem("buf")),
     ("$1", '"buf" overlaps the stack of subject "a" (0xfb000..0x100000, with its guard page)'))

test("memory-virtual-image-overlap",
     one(maps('<map logical="buf" physical="buf" $1virtualAddress="0x20_0000" writable="true"/>'), memory=mem("buf")),
     ("$1", '"buf" overlaps the program image window of subject "a" (0x200000..0x40000000)'))

test("memory-virtual-null-page",
     one(maps('<map logical="buf" physical="buf" $1virtualAddress="0" writable="true"/>'), memory=mem("buf")),
     ("$1", "warning", 'memory "buf" maps the null page of subject "a"'))

# ---------------------------------------------------------------- devices

test("devices-owned-twice",
     system([S("a", devs('<device logical="u" physical="com1"/>')),
             S("b", devs('<device logical="u" $1physical="com1"/>'))]),
     ("$1", 'device "com1" is owned by subject "a" and by subject "b"'))

test("devices-granted-twice",
     one(devs('<device logical="u1" physical="com1"/>', '<device logical="u2" $1physical="com1"/>')),
     ("$1", 'device "com1" is granted twice to subject "a"'))

test("devices-resource-granted-twice",
     one(devs('<device logical="u" physical="com1">\n'
              '  <ioPort logical="p1" physical="ports"/>\n'
              '  <ioPort logical="p2" $1physical="ports"/>\n</device>')),
     ("$1", 'resource "ports" of device "com1" is granted twice to subject "a"'))

test("devices-grant-nothing",
     one(devs('<device logical="b" $1physical="board"/>')),
     ("$1", "warning", 'device "board" granted to subject "a" has no I/O ports, IRQs or memory'))

test("devices-ioport-inverted",
     system(A, hardware=hw(('<ioPort name="ports" start="16#03e8#" end="16#03ef#"/>',
                            '<ioPort name="ports" $1start="16#03ef#" end="16#03e8#"/>'))),
     ("$1", 'I/O port range "ports" of device "com3" starts at 0x3ef, after its end 0x3e8'))

test("devices-ioport-overlap",
     system(A, hardware=hw(('<ioPort name="ports" start="16#03e8#" end="16#03ef#"/>',
                            '<ioPort name="ports" $1start="16#03f8#" end="16#03ff#"/>'))),
     ("$1", 'I/O ports 0x3f8..=0x3ff of device "com3" overlap I/O ports of device "com1"'))

test("devices-irq-out-of-range",
     system(A, hardware=hw(('<irq name="irq" number="11"/>', '<irq name="irq" $1number="221"/>'))),
     ("$1", 'IRQ "irq" of device "nic" has number 221; the highest usable IRQ is 220'))

test("devices-legacy-irq-duplicate",
     system(A, hardware=hw(('<ioPort name="ports" start="16#03e8#" end="16#03ef#"/>',
                            '<irq name="irq" $1number="4"/>\n      <ioPort name="ports" start="16#03e8#" end="16#03ef#"/>'))),
     ("$1", 'IRQ 4 of device "com3" is also used by device "com1"'))

test("devices-irq-shared",
     system([S("a", devs('<device logical="n" physical="nic2"/>')),
             S("b", devs('<device logical="n" $1physical="nic3"/>'))]),
     ("$1", 'IRQ 16 of device "nic3" is also owned by subject "a" through device "nic2"'))

test("devices-pci-duplicate",
     system(A, hardware=hw(('<pci bus="16#00#" device="16#05#" function="0"/>',
                            '<pci $1bus="16#00#" device="16#04#" function="0"/>'))),
     ("$1", 'PCI address 00:04.0 of device "nic3" is also used by device "nic2"'))

test("devices-pci-range",
     system(A, hardware=hw(('<pci bus="16#00#" device="16#05#" function="0"/>',
                            '<pci bus="16#00#" $1device="32" $2function="8"/>'))),
     ("$1", 'PCI device number 32 of device "nic3" is out of range 0..=31'),
     ("$2", 'PCI function number 8 of device "nic3" is out of range 0..=7'))

test("devices-pci-no-config-space",
     system(A, hardware=hw(('<devices pciConfigAddress="16#e000_0000#" pciConfigSize="16#1000_0000#">', '<devices>'),
                           ('<pci bus="16#00#" device="16#03#" function="0"/>', '$1<pci bus="16#00#" device="16#03#" function="0"/>'),
                           ('<pci bus="16#00#" device="16#04#" function="0"/>\n', ''),
                           ('<pci bus="16#00#" device="16#05#" function="0"/>\n', ''))),
     ("$1", 'device "nic" has a PCI address but the hardware description gives no pciConfigAddress'))

test("devices-pci-config-unaligned",
     system(A, hardware=hw(('pciConfigAddress="16#e000_0000#"', '$1pciConfigAddress="16#e008_0000#"'))),
     ("$1", 'pciConfigAddress 0xe0080000 is not 1 MiB aligned'))

test("devices-pci-config-size",
     system(A, hardware=hw(('pciConfigSize="16#1000_0000#"', '$1pciConfigSize="16#1000#"'))),
     ("$1", 'pciConfigSize 0x1000 (4.0 KiB) is not a multiple of 1 MiB between 1 MiB and 256 MiB'))

test("devices-pci-config-in-ram",
     system(A, hardware=hw(('pciConfigAddress="16#e000_0000#" pciConfigSize="16#1000_0000#"',
                            '$1pciConfigAddress="16#0800_0000#" pciConfigSize="16#0010_0000#"'))),
     ("$1", 'PCI configuration space 0x8000000..0x8100000 overlaps allocatable memory block "ram"'))

test("devices-memory-unaligned",
     system(A, hardware=hw(('physicalAddress="16#feb0_0000#"', '$1physicalAddress="16#feb0_0800#"'))),
     ("$1", 'memory "mmio" of device "nic" at 0xfeb00800 is not 4 KiB aligned'))

test("devices-memory-size",
     system(A, hardware=hw(('<memory name="mmio" physicalAddress="16#feb0_0000#" size="16#1000#"',
                            '<memory name="mmio" physicalAddress="16#feb0_0000#" $1size="16#0800#"'))),
     ("$1", 'memory "mmio" of device "nic" has size 0x800 (2.0 KiB), which is not a non-zero multiple of 4 KiB'))

test("devices-memory-overlap",
     system(A, hardware=hw(('physicalAddress="16#feb1_0000#"', '$1physicalAddress="16#feb0_0000#"'))),
     ("$1", 'memory "mmio" of device "nic2" overlaps memory "mmio" of device "nic"'))

test("devices-memory-in-ram",
     system(A, hardware=hw(('physicalAddress="16#feb0_0000#"', '$1physicalAddress="16#0800_0000#"'))),
     ("$1", 'memory "mmio" of device "nic" overlaps allocatable memory block "ram"'))

test("devices-memory-write-back",
     system(A, hardware=hw(('size="16#1000#" caching="UC"', 'size="16#1000#" $1caching="WB"'))),
     ("$1", "warning", 'memory "mmio" of device "nic" is write-back cached'))

# --------------------------------------------------------------- hardware

test("hardware-memory-block-overlap",
     system(A, hardware=hw(('size="16#0fef_0000#"/>',
                            'size="16#0fef_0000#"/>\n    <memoryBlock allocatable="false" name="rom" $1physicalAddress="16#0800_0000#" size="16#1000#"/>'))),
     ("$1", 'memory block "rom" overlaps memory block "ram"'))

test("hardware-no-allocatable-memory",
     system(A, hardware=hw(('<hardware>', '$1<hardware>'),
                           ('allocatable="true" name="ram"', 'allocatable="false" name="ram"'))),
     ("$1", 'the hardware description has no allocatable memory block'))

test("hardware-memory-block-size-zero",
     system(A, hardware=hw(('size="16#0fef_0000#"/>',
                            'size="16#0fef_0000#"/>\n    <memoryBlock allocatable="false" name="empty" physicalAddress="16#1000_0000#" $1size="0"/>'))),
     ("$1", 'memory block "empty" has size 0'))

test("hardware-memory-block-unaligned",
     system(A, hardware=hw(('size="16#0fef_0000#"/>',
                            'size="16#0fef_0000#"/>\n    <memoryBlock allocatable="true" name="ram2" $1physicalAddress="16#1000_0800#" size="16#1000#"/>'))),
     ("$1", 'allocatable memory block "ram2" at 0x10000800 with size 0x1000 (4.0 KiB) is not 4 KiB aligned'))

test("hardware-memory-block-too-high",
     system(A, hardware=hw(('size="16#0fef_0000#"/>',
                            'size="16#0fef_0000#"/>\n    <memoryBlock allocatable="false" name="far" $1physicalAddress="16#ffff_0000_0000#" size="16#0002_0000_0000#"/>'))),
     ("$1", 'memory block "far" does not fit in the 48-bit physical address space'))

test("hardware-cpu-cores-zero",
     system(A, hardware=hw(('cpuCores="2"', '$1cpuCores="0"'))),
     ("$1", 'the processor has 0 cores (cpuCores)'))

test("hardware-too-many-cpus",
     system(A, hardware=hw(('cpuCores="2"', '$1cpuCores="1"'))),
     ("$1", 'cpuCores is 1 but the processor lists 2 cpu elements'))

test("hardware-speed-zero",
     system(A, hardware=hw(('speed="10000"', '$1speed="0"'))),
     ("$1", 'the processor speed is 0 kHz'))

test("hardware-apic-id-duplicate",
     system(A, hardware=hw(('<cpu apicId="2"/>', '<cpu $1apicId="0"/>'))),
     ("$1", 'APIC id 0 is listed more than once'))

test("hardware-vmx-timer-rate",
     system(A, hardware=hw(('vmxTimerRate="0"', '$1vmxTimerRate="32"'))),
     ("$1", 'vmxTimerRate 32 is out of range 0..=31'))

test("hardware-reserved-memory-in-ram",
     system(A, hardware=hw(('size="16#0fef_0000#"/>',
                            'size="16#0fef_0000#"/>\n    <reservedMemory name="rmrr" $1physicalAddress="16#0800_0000#" size="16#1000#"/>'))),
     ("$1", 'reserved memory "rmrr" overlaps allocatable memory block "ram"'))

# ----------------------------------------------------------------- events

PING_SRC = '<event id="1" logical="ping" physical="ping"/>'

test("events-no-source",
     system([S("a", ev_tgt(PING_SRC))], events='<event $1name="ping" mode="async"/>'),
     ("$1", 'event "ping" has no source'))

test("events-no-target",
     system([S("a", ev_src(PING_SRC))], events='<event $1name="ping" mode="async"/>'),
     ("$1", 'event "ping" has no target'))

test("events-multiple-targets",
     system([S("a", ev_src(PING_SRC)), S("b", ev_tgt(PING_SRC)),
             S("c", ev_tgt('<event id="1" logical="ping" $1physical="ping"/>'))],
            events='<event name="ping" mode="async"/>'),
     ("$1", 'event "ping" has more than one target'))

test("events-kernel-target",
     system([S("a", ev_src('<event id="1" logical="halt" physical="halt"/>')),
             S("b", ev_tgt('<event id="1" logical="halt" $1physical="halt"/>'))],
            events='<event name="halt" mode="kernel" action="poweroff"/>'),
     ("$1", 'kernel event "halt" cannot have a target subject'))

test("events-self-target",
     system([S("a", ev_src('<event id="1" logical="tick" physical="tick"/>')),
             S("b", ev_tgt('<event id="1" logical="tick" $1physical="tick"/>'))],
            events='<event name="tick" mode="self"/>'),
     ("$1", 'self event "tick" is received by subject "b" but raised by subject "a"'))

test("events-switch-group",
     system([S("a", ev_src('<event id="1" logical="sw" $1physical="sw"/>')),
             S("b", ev_tgt('<event id="1" logical="sw" physical="sw"/>'))],
            events='<event name="sw" mode="switch"/>'),
     ("$1", 'switch event "sw" targets subject "b", which is not in the scheduling group of its source "a"'))

test("events-switch-self",
     system([S("a", ev_both(['<event id="1" logical="sw" $1physical="sw"/>'],
                            ['<event id="1" logical="sw_in" physical="sw"/>']))],
            events='<event name="sw" mode="switch"/>'),
     ("$1", 'switch event "sw" hands the CPU from subject "a" to itself'))

test("events-ipi-same-cpu",
     system([S("a", ev_src('<event id="1" logical="kick" $1physical="kick"/>')),
             S("b", ev_tgt('<event id="1" logical="kick" physical="kick"/>'))],
            events='<event name="kick" mode="ipi"/>'),
     ("$1", 'ipi event "kick" goes from subject "a" to subject "b" on the same CPU 0'))

test("events-async-self",
     system([S("a", ev_both(['<event id="1" logical="e" physical="e"/>'],
                            ['<event id="1" logical="e_in" $1physical="e"/>']))],
            events='<event name="e" mode="async"/>'),
     ("$1", "warning", 'async event "e" is received by its own source, subject "a"'))

test("events-action-not-kernel",
     system([S("a", ev_src(PING_SRC)), S("b", ev_tgt(PING_SRC))],
            events='<event name="ping" mode="async" $1action="poweroff"/>'),
     ("$1", 'event "ping" has an action but its mode is async'))

test("events-kernel-no-action",
     system([S("a", ev_src('<event id="1" logical="k" physical="k"/>'))],
            events='<event $1name="k" mode="kernel"/>'),
     ("$1", 'kernel event "k" has no action'))

test("events-unmask-irq-no-irq",
     system([S("a", ev_src('<event id="1" logical="unmask" $1physical="unmask"/>'))],
            events='<event name="unmask" mode="kernel" action="unmask_irq"/>'),
     ("$1", 'subject "a" raises the unmask_irq event "unmask" but owns no IRQ'))

test("events-source-twice",
     system([S("a", ev_src(PING_SRC, '<event id="2" logical="ping2" $1physical="ping"/>')),
             S("b", ev_tgt(PING_SRC))],
            events='<event name="ping" mode="async"/>'),
     ("$1", "warning", 'subject "a" is a source of event "ping" more than once'))

test("events-source-id-range",
     system([S("a", ev_src('<event $1id="64" logical="k" physical="k"/>'))],
            events='<event name="k" mode="kernel" action="yield"/>'),
     ("$1", 'source event id 64 of subject "a" is out of range 0..=63'))

test("events-target-id-range",
     system([S("a", ev_src(PING_SRC)), S("b", ev_tgt('<event $1id="64" logical="ping" physical="ping"/>'))],
            events='<event name="ping" mode="async"/>'),
     ("$1", 'target event id 64 of subject "b" is out of range 0..=63'))

test("events-source-id-duplicate",
     system([S("a", ev_src('<event id="1" logical="k1" physical="k1"/>',
                           '<event $1id="1" logical="k2" physical="k2"/>'))],
            events='<event name="k1" mode="kernel" action="yield"/>\n<event name="k2" mode="kernel" action="sleep"/>'),
     ("$1", 'subject "a" uses source event id 1 more than once'))

test("events-target-id-duplicate",
     system([S("a", ev_src('<event id="1" logical="e1" physical="e1"/>', '<event id="2" logical="e2" physical="e2"/>')),
             S("b", ev_tgt('<event id="1" logical="e1" physical="e1"/>', '<event $1id="1" logical="e2" physical="e2"/>'))],
            events='<event name="e1" mode="async"/>\n<event name="e2" mode="async"/>'),
     ("$1", 'subject "b" uses target event id 1 more than once'))

test("events-vector-range",
     system([S("a", ev_src(PING_SRC)),
             S("b", ev_tgt('<event id="1" logical="ping" physical="ping">\n  <inject_interrupt $1vector="16"/>\n</event>'))],
            events='<event name="ping" mode="async"/>'),
     ("$1", 'vector 16 of subject "b" is outside the usable range 32..=255'))

test("events-vector-reserved",
     system([S("a", ev_src(PING_SRC)),
             S("b", ev_tgt('<event id="1" logical="ping" physical="ping">\n  <inject_interrupt $1vector="253"/>\n</event>'))],
            events='<event name="ping" mode="async"/>'),
     ("$1", 'vector 253 is reserved for IOMMU fault reporting'))

test("events-vector-duplicate",
     system([S("a", ev_src('<event id="1" logical="e1" physical="e1"/>', '<event id="2" logical="e2" physical="e2"/>')),
             S("b", ev_tgt('<event id="1" logical="e1" physical="e1">\n  <inject_interrupt vector="48"/>\n</event>',
                           '<event id="2" logical="e2" physical="e2">\n  <inject_interrupt $1vector="48"/>\n</event>'))],
            events='<event name="e1" mode="async"/>\n<event name="e2" mode="async"/>'),
     ("$1", 'subject "b" uses vector 48 more than once'))

# --------------------------------------------------------------- channels

W = '<writer logical="out" physical="data"/>'
R = '<reader logical="in" physical="data"/>'

test("channels-no-writer",
     system([S("b", chans(R))], channels='<channel $1name="data" size="0x1000"/>'),
     ("$1", 'channel "data" has no writer'))

test("channels-multiple-writers",
     system([S("a", chans(W)), S("b", chans(R)), S("c", chans('<writer logical="out" $1physical="data"/>'))],
            channels='<channel name="data" size="0x1000"/>'),
     ("$1", 'channel "data" has more than one writer'))

test("channels-no-reader",
     system([S("a", chans(W))], channels='<channel $1name="data" size="0x1000"/>'),
     ("$1", 'channel "data" has no reader'))

test("channels-writer-reads",
     system([S("a", chans(W, '<reader logical="in" $1physical="data"/>')), S("b", chans(R))],
            channels='<channel name="data" size="0x1000"/>'),
     ("$1", 'subject "a" both writes and reads channel "data"'))

test("channels-read-twice",
     system([S("a", chans(W)), S("b", chans(R, '<reader logical="in2" $1physical="data"/>'))],
            channels='<channel name="data" size="0x1000"/>'),
     ("$1", 'subject "b" reads channel "data" more than once'))


def pair(channel, writer=W, reader=R, rcpu=0):
    return dict(subjects=[S("a", chans(writer)), S("b", chans(reader), cpu=rcpu)], channels=channel)


def csys(channel, writer=W, reader=R, rcpu=0, **kw):
    p = pair(channel, writer, reader, rcpu)
    return system(p["subjects"], channels=p["channels"], **kw)


test("channels-size-zero", csys('<channel name="data" $1size="0"/>'),
     ("$1", 'channel "data" has size 0'))

test("channels-size-unaligned", csys('<channel name="data" $1size="0x1800"/>'),
     ("$1", 'size 0x1800 (6.0 KiB) of channel "data" is not a multiple of 4 KiB'))

test("channels-size-too-small", csys('<channel name="data" $1size="0x1000" elementSize="0x1000"/>'),
     ("$1", 'channel "data" of size 0x1000 (4.0 KiB) cannot hold the 64-byte header and one element of 4096 bytes'))

test("channels-element-size-zero", csys('<channel name="data" size="0x1000" $1elementSize="0"/>'),
     ("$1", 'element size of channel "data" is 0'))

test("channels-element-size-unaligned", csys('<channel name="data" size="0x1000" $1elementSize="12"/>'),
     ("$1", 'element size 12 of channel "data" is not a multiple of 8'))

test("channels-protocol-zero", csys('<channel name="data" size="0x1000" $1protocol="0"/>'),
     ("$1", 'protocol of channel "data" is 0'))

test("channels-event-without-has-event",
     csys('<channel name="data" size="0x1000"/>', writer='<writer logical="out" physical="data" $1event="2"/>'),
     ("$1", 'writer "out" of subject "a" gives event 2, but channel "data" has no hasEvent'))

test("channels-vector-without-has-event",
     csys('<channel name="data" size="0x1000"/>', reader='<reader logical="in" physical="data" $1vector="49"/>'),
     ("$1", 'reader "in" of subject "b" gives vector 49, but channel "data" has no hasEvent'))

test("channels-ipi-same-cpu",
     csys('<channel name="data" size="0x1000" hasEvent="ipi"/>', reader='<reader logical="in" $1physical="data"/>'),
     ("$1", 'channel "data" signals its readers with an IPI, but reader "b" runs on CPU 0 like writer "a"'))

GROUP3 = """<scheduling tickRate="1000">
  <partitions>
    <partition name="p"><group><subject name="a"/><subject name="b"/><subject name="c"/></group></partition>
  </partitions>
  <majorFrame>
    <cpu id="0">
      <minorFrame partition="p" ticks="10"/>
    </cpu>
  </majorFrame>
</scheduling>"""

test("channels-event-multiple-readers",
     system([S("a", chans(W)), S("b", chans(R)), S("c", chans(R))],
            channels='<channel name="data" size="0x1000" $1hasEvent="async"/>'),
     ("$1", 'channel "data" raises an event but has 2 readers; an event has exactly one target'))

test("channels-switch-readers",
     system([S("a", chans(W)), S("b", chans(R)), S("c", chans(R))],
            channels='<channel name="data" size="0x1000" $1hasEvent="switch"/>', scheduling=GROUP3),
     ("$1", 'channel "data" hands the CPU to its reader but has 2 readers'))

test("channels-switch-group",
     csys('<channel name="data" size="0x1000" hasEvent="switch"/>', reader='<reader logical="in" $1physical="data"/>'),
     ("$1", 'channel "data" hands the CPU to reader "b", which is not in the scheduling group of writer "a"'))

test("channels-single-element", csys('<channel name="data" $1size="0x1000" elementSize="0x800"/>'),
     ("$1", "warning", 'channel "data" holds only one element of 2048 bytes'))

# --------------------------------------------------------------- subjects

test("subjects-none",
     """$1<system>
  <hardware href="common/hardware.xml"/>
  <kernel debugConsole="com2"/>
  <scheduling tickRate="1000">
    <partitions/>
  </scheduling>
</system>
""",
     ("$1", 'the system has no subjects'))

test("subjects-binary-name",
     system([("a", 0, '<subject name="a" profile="native" $1binary="../a"/>')]),
     ("$1", 'binary name "../a" of subject "a" is not a plain file name'))

test("subjects-cpu-range",
     system([S("a", cpu_attr="$1"), S("b")], sched_subjects=[("a", 0), ("b", 0)]).replace('cpu="$1"', '$1cpu="2"'),
     ("$1", 'subject "a" runs on CPU 2, but the processor has 2 cores'))

test("subjects-cpu-partition",
     system([S("a"), S("b")], sched_subjects=[("a", 0), ("b", 0)]).replace(
         '<subject name="b" profile="native" binary="b"/>', '<subject name="b" profile="native" binary="b" $1cpu="1"/>'),
     ("$1", 'subject "b" is on CPU 1 but its partition "p_b" runs on CPU 0'))

test("subjects-stack-zero", system([S("a", attrs='$1stackSize="0"')]),
     ("$1", 'stack size of subject "a" is 0'))

test("subjects-stack-unaligned", system([S("a", attrs='$1stackSize="0x1800"')]),
     ("$1", 'stack size 0x1800 (6.0 KiB) of subject "a" is not a multiple of 4 KiB'))

test("subjects-stack-too-large", system([S("a", attrs='$1stackSize="0x10_0000"')]),
     ("$1", 'stack size 0x100000 (1.0 MiB) of subject "a" exceeds the 0xee000 (952.0 KiB) between its info page and the stack top'))

test("subjects-too-many-resources",
     system([("a", 0, subj("a", ev_src(*[f'<event id="{i}" logical="k{i}" physical="k{i}"/>' for i in range(63)])).replace('name="a"', '$1name="a"', 1))],
            events="\n".join(f'<event name="k{i}" mode="kernel" action="yield"/>' for i in range(63))),
     ("$1", 'subject "a" has 63 resources, but its info page holds at most 62'))

LONG = "l" * 32
test("subjects-logical-too-long",
     one(maps(f'<map $1logical="{LONG}" physical="buf" writable="true"/>'), memory=mem("buf")),
     ("$1", f'logical name "{LONG}" is 32 bytes long; the info page holds at most 31'))

test("subjects-not-scheduled",
     system([S("a"), ("b", 0, '<subject $1name="b" profile="native" binary="b"/>')], sched_subjects=[("a", 0)]),
     ("$1", 'subject "b" is not in any scheduling group'))

test("subjects-scheduled-twice",
     system(A, scheduling="""<scheduling tickRate="1000">
  <partitions>
    <partition name="p_a"><group><subject name="a"/></group></partition>
    <partition name="p_a2"><group><subject $1name="a"/></group></partition>
  </partitions>
  <majorFrame>
    <cpu id="0">
      <minorFrame partition="p_a" ticks="10"/>
      <minorFrame partition="p_a2" ticks="10"/>
    </cpu>
  </majorFrame>
</scheduling>"""),
     ("$1", 'subject "a" is in more than one scheduling group'))

# ------------------------------------------------------------- scheduling


def sched(partitions, frames, rate="1000"):
    return (f'<scheduling tickRate="{rate}">\n  <partitions>\n' + indent(partitions, 4)
            + "\n  </partitions>\n" + indent(frames, 2) + "\n</scheduling>")


PA = '<partition name="p_a"><group><subject name="a"/></group></partition>'
PB = '<partition name="p_b"><group><subject name="b"/></group></partition>'

test("scheduling-tick-rate-zero",
     system(A, scheduling=sched(PA, '<majorFrame>\n  <cpu id="0"><minorFrame partition="p_a" ticks="10"/></cpu>\n</majorFrame>', rate="0").replace('tickRate="0"', '$1tickRate="0"')),
     ("$1", 'tickRate is 0'))

test("scheduling-no-major-frame",
     system(A, scheduling='$1<scheduling tickRate="1000">\n  <partitions>\n    ' + PA + '\n  </partitions>\n</scheduling>'),
     ("$1", 'the plan has no major frame'))

test("scheduling-partition-empty",
     system(A, scheduling=sched(PA + '\n<partition $1name="p_e"/>',
                                '<majorFrame>\n  <cpu id="0">\n    <minorFrame partition="p_a" ticks="10"/>\n    <minorFrame partition="p_e" ticks="10"/>\n  </cpu>\n</majorFrame>')),
     ("$1", 'partition "p_e" has no group'))

test("scheduling-partition-unused",
     system([S("a"), S("b")], scheduling=sched(PA + "\n" + PB.replace('name="p_b"', '$1name="p_b"'),
                                               '<majorFrame>\n  <cpu id="0"><minorFrame partition="p_a" ticks="10"/></cpu>\n</majorFrame>')),
     ("$1", 'partition "p_b" is not in any minor frame'))

test("scheduling-partition-multi-cpu",
     system(A, scheduling=sched(PA, '<majorFrame>\n  <cpu id="0"><minorFrame partition="p_a" ticks="10"/></cpu>\n'
                                    '  <cpu id="1"><minorFrame $1partition="p_a" ticks="10"/></cpu>\n</majorFrame>')),
     ("$1", 'partition "p_a" runs on CPU 0 and on CPU 1'))

test("scheduling-partition-cpu",
     system(A, scheduling=sched('<partition name="p_a" $1cpu="1"><group><subject name="a"/></group></partition>',
                                '<majorFrame>\n  <cpu id="0"><minorFrame partition="p_a" ticks="10"/></cpu>\n</majorFrame>')),
     ("$1", 'partition "p_a" is declared on CPU 1 but its minor frames are on CPU 0'))

test("scheduling-cpu-range",
     system([S("a"), S("b")], scheduling=sched(PA + "\n" + PB,
                                               '<majorFrame>\n  <cpu id="0"><minorFrame partition="p_a" ticks="10"/></cpu>\n'
                                               '  <cpu $1id="2"><minorFrame partition="p_b" ticks="10"/></cpu>\n</majorFrame>')),
     ("$1", 'CPU 2 is beyond the 2 cores of the processor'))

test("scheduling-cpu-twice",
     system([S("a"), S("b")], scheduling=sched(PA + "\n" + PB,
                                               '<majorFrame>\n  <cpu id="0"><minorFrame partition="p_a" ticks="10"/></cpu>\n'
                                               '  <cpu $1id="0"><minorFrame partition="p_b" ticks="10"/></cpu>\n</majorFrame>')),
     ("$1", 'CPU 0 appears more than once in this major frame'))

test("scheduling-cpu-missing",
     system([S("a"), S("b", cpu=1)], scheduling=sched(PA + "\n" + PB,
                                                      '<majorFrame>\n  <cpu id="0"><minorFrame partition="p_a" ticks="10"/></cpu>\n'
                                                      '  <cpu id="1"><minorFrame partition="p_b" ticks="10"/></cpu>\n</majorFrame>\n'
                                                      '$1<majorFrame>\n  <cpu id="0"><minorFrame partition="p_a" ticks="10"/></cpu>\n</majorFrame>')),
     ("$1", 'major frame 2 has no minor frames for CPU 1, which the plan uses'))

test("scheduling-frame-length",
     system([S("a"), S("b", cpu=1)], scheduling=sched(PA + "\n" + PB,
                                                      '<majorFrame>\n  <cpu id="0"><minorFrame partition="p_a" ticks="10"/></cpu>\n'
                                                      '  <cpu $1id="1"><minorFrame partition="p_b" ticks="20"/></cpu>\n</majorFrame>')),
     ("$1", 'major frame 1 lasts 20 ticks on CPU 1 but 10 ticks on CPU 0'))

test("scheduling-plan-switch-single",
     system([S("a", ev_src('<event id="1" logical="next" physical="next"/>'))],
            events='<event name="next" mode="kernel" $1action="next_plan"/>'),
     ("$1", "warning", 'kernel event "next" switches to the next plan, but the plan has only one major frame'))

test("scheduling-ticks-zero",
     system(A, scheduling=sched(PA, '<majorFrame>\n  <cpu id="0">\n    <minorFrame partition="p_a" ticks="10"/>\n'
                                    '    <minorFrame partition="p_a" $1ticks="0"/>\n  </cpu>\n</majorFrame>')),
     ("$1", 'minor frame of partition "p_a" has 0 ticks'))

test("scheduling-inexact-ticks",
     system(A, scheduling=sched(PA, '<majorFrame>\n  <cpu id="0"><minorFrame partition="p_a" $1ticks="60"/></cpu>\n</majorFrame>', rate="7")),
     ("$1", '60 ticks at tickRate 7 and 10000 kHz is not a whole number of TSC cycles'))

test("scheduling-major-overflow",
     system(A, scheduling=sched(PA, '<majorFrame>\n  <cpu $1id="0"><minorFrame partition="p_a" ticks="0xffff_ffff_ffff_ffff"/></cpu>\n</majorFrame>')),
     ("$1", 'major frame 1 lasts more than 2^64 TSC cycles on CPU 0'))

test("scheduling-boot-cpu-missing",
     system([S("a", cpu=1)], scheduling=sched(PA, '$1<majorFrame>\n  <cpu id="1"><minorFrame partition="p_a" ticks="10"/></cpu>\n</majorFrame>')),
     ("$1", 'the plan never schedules CPU 0, the boot CPU'))

test("scheduling-cpu-no-apic",
     system([S("a"), S("b", cpu=1)], hardware=hw(('    <cpu apicId="2"/>\n', '')),
            scheduling=sched(PA + "\n" + PB,
                             '<majorFrame>\n  <cpu id="0"><minorFrame partition="p_a" ticks="10"/></cpu>\n'
                             '  <cpu $1id="1"><minorFrame partition="p_b" ticks="10"/></cpu>\n</majorFrame>')),
     ("$1", 'CPU 1 of the plan has no cpu element (APIC id) in the hardware description'))

test("scheduling-group-unreachable",
     system([S("a"), S("b")], scheduling=sched('<partition name="p"><group><subject name="a"/><subject $1name="b"/></group></partition>',
                                               '<majorFrame>\n  <cpu id="0"><minorFrame partition="p" ticks="10"/></cpu>\n</majorFrame>')),
     ("$1", "warning", 'subject "b" shares a scheduling group with "a" but no switch event hands it the CPU'))

def too_many():
    """257 subjects, each alone in a group of its own partition."""
    n = 257
    subjects = [S(f"s{i}") for i in range(n)]
    subjects[-1] = ("s256", 0, '<subject $1name="s256" profile="native" binary="s256"/>')
    parts = [f'<partition name="p_s{i}"><group><subject name="s{i}"/></group></partition>' for i in range(n)]
    parts[-1] = '<partition $3name="p_s256">$2<group><subject name="s256"/></group></partition>'
    frames = "\n".join(f'  <minorFrame partition="p_s{i}" ticks="10"/>' for i in range(n))
    return system(subjects, scheduling=sched("\n".join(parts),
                                             f'<majorFrame>\n  <cpu id="0">\n{frames}\n  </cpu>\n</majorFrame>'))


test("scheduling-too-many", too_many(),
     ("$1", 'subject "s256" is the 257th subject: the kernel\'s tables hold at most 256 subjects'),
     ("$2", 'this group of partition "p_s256" is the 257th scheduling group: the kernel\'s tables hold at most 256 scheduling groups'),
     ("$3", 'partition "p_s256" is the 257th partition: the kernel\'s tables hold at most 256 partitions'))

test("scheduling-cpu-kernel-limit",
     system([S("a"), S("b", cpu=4)],
            hardware=hw(('cpuCores="2"', 'cpuCores="8"'),
                        ('    <cpu apicId="2"/>\n',
                         "".join(f'    <cpu apicId="{2 * i}"/>\n' for i in range(1, 8)))),
            scheduling=sched(PA + "\n" + PB,
                             '<majorFrame>\n  <cpu id="0"><minorFrame partition="p_a" ticks="10"/></cpu>\n'
                             '  <cpu $1id="4"><minorFrame partition="p_b" ticks="10"/></cpu>\n</majorFrame>')),
     ("$1", 'CPU 4 is beyond the 4 CPUs the kernel starts (CPUs 0 to 3)'))

test("devices-pci-config-ports",
     system([S("a", devs('<device logical="cfg" physical="cfgdata">\n  $1<ioPort logical="data" physical="data"/>\n</device>')),
             S("b", devs('$2<device logical="cfg" physical="cfgaddr"/>'))],
            hardware=hw(("  </devices>",
                         '    <device name="cfgaddr">\n'
                         '      <ioPort name="address" start="16#0cf8#" end="16#0cfb#"/>\n'
                         '    </device>\n'
                         '    <device name="cfgdata">\n'
                         '      <ioPort name="data" start="16#0cfc#" end="16#0cff#"/>\n'
                         '    </device>\n  </devices>'))),
     ("$1", 'subject "a" is granted I/O ports 0xcfc..=0xcff of device "cfgdata", which hold the PCI configuration ports 0xcf8 or 0xcfc-0xcff: the kernel\'s'),
     ("$2", 'subject "b" is granted I/O ports 0xcf8..=0xcfb of device "cfgaddr", which hold the PCI configuration ports 0xcf8 or 0xcfc-0xcff: the kernel\'s'))

test("devices-pic-ports",
     system([S("a", devs('$1<device logical="pic" physical="pic1"/>')),
             S("b", devs('<device logical="elcr" physical="elcr">\n  $2<ioPort logical="elcr" physical="elcr"/>\n</device>'))],
            hardware=hw(("  </devices>",
                         '    <device name="pic1">\n'
                         '      <ioPort name="ports" start="16#0020#" end="16#0021#"/>\n'
                         '    </device>\n'
                         '    <device name="elcr">\n'
                         '      <ioPort name="elcr" start="16#04d0#" end="16#04d1#"/>\n'
                         '    </device>\n  </devices>'))),
     ("$1", 'subject "a" is granted I/O ports 0x20..=0x21 of device "pic1", which hold ports of the 8259 interrupt controllers (0x20-0x21, 0xa0-0xa1, 0x4d0-0x4d1): the kernel\'s'),
     ("$2", 'subject "b" is granted I/O ports 0x4d0..=0x4d1 of device "elcr", which hold ports of the 8259 interrupt controllers (0x20-0x21, 0xa0-0xa1, 0x4d0-0x4d1): the kernel\'s'))

# ----------------------------------------------------------------- kernel

test("kernel-debug-console-unknown", system(A, kernel='<kernel $1debugConsole="nope"/>'),
     ("$1", 'debug console "nope" is not a device of the hardware description'))

test("kernel-debug-console-no-ports", system(A, kernel='<kernel $1debugConsole="board"/>'),
     ("$1", 'debug console device "board" has no I/O port range'))

test("kernel-debug-console-port-count",
     system(A, kernel='<kernel $1debugConsole="com2"/>',
            hardware=hw(('start="16#02f8#" end="16#02ff#"', 'start="16#02f8#" end="16#02fb#"'))),
     ("$1", 'debug console "com2" has 4 I/O ports; a 16550 UART needs 8'))

test("kernel-debug-console-owned",
     one(devs('<device logical="uart" $1physical="com2"/>')),
     ("$1", 'subject "a" owns device "com2", the kernel\'s debug console'))

test("kernel-windows-outside-ram",
     system(A, hardware=hw(('<hardware>', '$1<hardware>'),
                           ('name="ram" physicalAddress="16#0010_0000#" size="16#0fef_0000#"',
                            'name="ram" physicalAddress="16#0100_0000#" size="16#0f00_0000#"'))),
     ("$1", 'the kernel windows 0x100000..0x300000 are not inside an allocatable memory block'))

# ------------------------------------------------------------ late additions

test("names-reserved-region-name",
     one(maps(mp("st", "a|stack")), memory='<memory $1name="a|stack" size="0x1000" caching="WB"/>'),
     ("$1", 'memory region "a|stack" has a name the composer reserves for the regions of subject "a"'))

test("subjects-name-reserved",
     system([("kernel", 0, '<subject $1name="kernel" profile="native" binary="k"/>')]),
     ("$1", 'subject name "kernel" is reserved for the kernel'))

# At tickRate 1000000 and 10000 kHz a tick is 10 TSC cycles. The frames
# are between native partitions of one CPU (the lean pad, 650), and the
# common test machine has an IOMMU, so the kernel takes interrupts in root
# mode: the pad is 650 + 450 = 1100 cycles. Below 2200 a frame is unusable
# (error), below 11000 short (warning); each file shows both edges of its
# band.
test("scheduling-minor-frame-unusable",
     system(A, scheduling=sched(PA, '<majorFrame>\n  <cpu id="0">'
                                    '<minorFrame partition="p_a" $1ticks="1"/>'
                                    '<minorFrame partition="p_a" $2ticks="201"/>'
                                    '<minorFrame partition="p_a" ticks="1100"/></cpu>\n</majorFrame>',
                                rate="1000000")),
     ("$1", 'minor frame of partition "p_a" lasts 10 TSC cycles; its subject starts 1010 cycles after the boundary, so the frame needs at least 2020'),
     ("$2", 'minor frame of partition "p_a" lasts 2010 TSC cycles; its subject starts 1010 cycles after the boundary, so the frame needs at least 2020'))

test("scheduling-minor-frame-short",
     system(A, scheduling=sched(PA, '<majorFrame>\n  <cpu id="0">'
                                    '<minorFrame partition="p_a" $1ticks="220"/>'
                                    '<minorFrame partition="p_a" $2ticks="1009"/>'
                                    '<minorFrame partition="p_a" ticks="1100"/></cpu>\n</majorFrame>',
                                rate="1000000")),
     ("$1", "warning", 'minor frame of partition "p_a" lasts 2200 TSC cycles, of which the first 1010 (46%) go to the switch into it'),
     ("$2", "warning", 'minor frame of partition "p_a" lasts 10090 TSC cycles, of which the first 1010 (11%) go to the switch into it'))

LOGICAL27 = "serial_port_number_one_xxxx"
test("subjects-port-name-too-long",
     system([S("a", devs(f'<device $1logical="{LOGICAL27}" physical="com1"/>'))],
            hardware=hw(('<ioPort name="ports" start="16#03f8#" end="16#03ff#"/>',
                         '<ioPort name="ports" start="16#03f8#" end="16#03fb#"/>\n'
                         '      <ioPort name="extra" start="16#03fc#" end="16#03ff#"/>'))),
     ("$1", f'I/O port range "extra" of device "com1" appears as "{LOGICAL27}|extra" in the info page of subject "a", which is 33 bytes long; at most 31 fit'))

# ------------------------------------------------------------------ flows

STOP = 'onFault="stopSubject"'

test("flows-deny-unknown-subject",
     system(A, flows='<deny from="a" $1to="nobody"/>'),
     ("$1", 'subject "nobody" is not defined'))

test("flows-deny-self",
     system(A, flows='<deny from="a" $1to="a"/>'),
     ("$1", 'a flow from "a" to itself cannot be denied'))

test("flows-denied",
     system([S("a", chans('<writer logical="out" physical="ab"/>'), attrs=STOP),
             S("b", chans('<reader logical="in" physical="ab"/>', '<writer logical="out" physical="bc"/>'), attrs=STOP),
             S("c", chans('<reader logical="in" physical="bc"/>'), attrs=STOP)],
            channels='<channel name="ab" size="0x1000"/>\n<channel name="bc" size="0x1000"/>',
            flows='$1<deny from="a" to="c"/>\n<deny from="c" to="a"/>\n$2<deny from="a" to="c" covert="true" direct="true"/>'),
     ("$1", 'the policy lets information flow from "a" to "c", which this <deny> forbids: '
            'a -> b (channel "ab"), then b -> c (channel "bc")'),
     ("$2", 'the policy lets information flow from "a" to "c", which this <deny> forbids: '
            'a -> c (CPU 0)'))
