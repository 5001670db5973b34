/**
 * The typed, format-neutral model of one virtual machine: what OVF, libvirt domain XML and
 * virt-image descriptors are read into and written from.
 *
 * Conventions (stable; adapters and the migration engine rely on them):
 * - sizes are **bytes** (`…Bytes`), as JS numbers (exact up to 8 PiB);
 * - MAC addresses are lowercase, colon-separated (`52:54:00:ab:cd:ef`), see {@link normaliseMac};
 * - UUIDs are lowercase canonical 8-4-4-4-12, see {@link normaliseUuid};
 * - arrays keep the source's order: `disks[0]` is the source's first disk, and the
 *   converters keep that order (it decides device names such as `vda`, `vdb`);
 * - optional fields are absent when the source did not say, never filled with a guess;
 *   a writer that needs a value picks a documented default and says so in its report.
 */

/** Firmware the guest boots with. */
export type Firmware = 'bios' | 'uefi';

/** Bus a disk or CD-ROM hangs off. `xen` is Xen's paravirtual block device. */
export type DiskBus = 'ide' | 'sata' | 'scsi' | 'virtio' | 'nvme' | 'usb' | 'xen' | 'fdc';

/**
 * Image format of a disk file. `vmdk-stream` is VMware's streamOptimized VMDK (the format in
 * OVA packages), distinct from a monolithic/sparse `vmdk` that a hypervisor can open directly.
 */
export type DiskFormat = 'raw' | 'qcow2' | 'vmdk' | 'vmdk-stream' | 'vdi' | 'vhd' | 'vhdx' | 'iso';

/** How a file of the package is compressed on the wire (OVF 1.1 §7.1 `ovf:compression`). */
export type FileCompression = 'gzip';

/** A file a device refers to: an OVF `File`, a libvirt `<source file=…>`, a virt-image `<drive>`. */
export interface VmFileRef {
  /**
   * Where the file is, as the descriptor wrote it: relative to the descriptor for OVF/virt-image
   * (`disk1.vmdk`, `../images/a.img`), usually absolute for libvirt. Never resolved here.
   */
  readonly href: string;
  /** The file's size in bytes as stored (compressed size when compressed), when known. */
  readonly sizeBytes?: number;
  /** Compression of the stored file, when compressed. */
  readonly compression?: FileCompression;
  /** OVF 1.1 §7.1 chunked files: the size of each chunk (`href.000000000`, …), when chunked. */
  readonly chunkSizeBytes?: number;
}

/** A hard disk. */
export interface VmDisk {
  /**
   * Virtual size the guest sees, in bytes. `0` means unknown (some producers omit it): the
   * backing image's own virtual size applies. Readers say so in their report.
   */
  readonly capacityBytes: number;
  /** Image format of {@link file}, when known. */
  readonly format?: DiskFormat;
  /** The backing file; absent for a blank disk to be created at deploy time (OVF disk without fileRef). */
  readonly file?: VmFileRef;
  /**
   * Non-file storage libvirt can express (block device, iSCSI LUN, RBD …), kept as
   * `type:detail` (e.g. `block:/dev/sdb`, `network:iscsi:iqn…/1`). Formats that cannot carry it report it.
   */
  readonly source?: string;
  /** Bytes actually used in the image, when the source says (OVF `ovf:populatedSize`). */
  readonly populatedBytes?: number;
  /** Bus of the controller the disk sits on. */
  readonly bus: DiskBus;
  /** Controller model (`lsilogic`, `pvscsi`, `virtio-scsi`, `ahci`, `piix4` …), when the source says. */
  readonly controllerModel?: string;
  /** Guest device name (`vda`, `sda`, `hda`), when the source says. */
  readonly targetDev?: string;
  /** 1-based boot priority across all devices (1 boots first); absent = not in the boot list. */
  readonly bootOrder?: number;
  /** Read-only to the guest. */
  readonly readonly?: boolean;
}

/** A CD/DVD drive, with or without media. */
export interface VmCdrom {
  /** The inserted image, when any. */
  readonly file?: VmFileRef;
  /** Bus of the drive. */
  readonly bus: DiskBus;
  /** Guest device name (`hdc`, `sda`), when the source says. */
  readonly targetDev?: string;
  /** 1-based boot priority, as for {@link VmDisk.bootOrder}. */
  readonly bootOrder?: number;
}

/**
 * Model of a virtual NIC, normalised across formats: libvirt's names (`virtio`, `e1000`, `e1000e`,
 * `rtl8139`, `vmxnet3`, `pcnet`, `ne2k_pci`, `netfront`) — anything else is kept as written.
 */
export type NicModel = 'virtio' | 'e1000' | 'e1000e' | 'rtl8139' | 'vmxnet3' | 'vmxnet2' | 'vmxnet' | 'pcnet' | 'ne2k_pci' | 'netfront' | (string & {});

/** What a NIC is plugged into on the host side. */
export type NicAttachment = 'network' | 'bridge' | 'direct' | 'user' | 'other';

/** A network interface. */
export interface VmNic {
  /** MAC address, lowercase colon form; absent = let the target assign one. */
  readonly mac?: string;
  /** Device model; absent = the source did not say. */
  readonly model?: NicModel;
  /**
   * Name of the logical network (OVF `NetworkSection` name, libvirt network/bridge name, virt-image
   * has none). The migration engine maps these names between clouds.
   */
  readonly network?: string;
  /** How the source attached it; OVF only knows named networks (`network`). */
  readonly attachment?: NicAttachment;
  /** 1-based boot priority (PXE). */
  readonly bootOrder?: number;
}

/** Virtual CPUs. `count` = sockets × cores × threads when a topology is given. */
export interface VmCpu {
  /** Number of vCPUs. */
  readonly count: number;
  /** Optional topology; when present its product equals `count`. */
  readonly topology?: { readonly sockets: number; readonly cores: number; readonly threads: number };
}

/** A remote-display device (VNC/SPICE/RDP …). */
export interface VmGraphics {
  readonly type: string;
}

/** A deploy-time property (OVF ProductSection `Property`, DSP0243 §9.5). */
export interface VmProperty {
  /** `class.key.instance` joined as OVF does (`ovf:class`/`ovf:key`/`ovf:instance`). */
  readonly key: string;
  /** OVF property type (`string`, `boolean`, `uint8`, …). */
  readonly type: string;
  /** Default value, when given. */
  readonly value?: string;
  /** Whether the deployer may set it. */
  readonly userConfigurable: boolean;
  /** Human label/description, when given. */
  readonly label?: string;
  readonly description?: string;
  /** Whether the value is secret (`ovf:password="true"`). */
  readonly password?: boolean;
}

/** Where a model came from (for reports and for writers that want to keep producer hints). */
export interface VmOrigin {
  /** Descriptor format that was read. */
  readonly format: 'ovf' | 'libvirt' | 'virt-image' | 'model';
  /** OVF version or libvirt domain type, as read (`1.0`, `2.0`, `0.9`, `kvm`, `xen` …). */
  readonly version?: string;
  /** OVF `VirtualSystemType` / libvirt `<os><type>` hints (`vmx-07`, `virtualbox-2.2`, `hvm`, `xen`). */
  readonly systemTypes?: readonly string[];
}

/**
 * One virtual machine, as portable as the formats allow. Everything that matters for running it in
 * another cloud is here; what a format carried beyond this is listed by the reader's report.
 */
export interface VirtualMachine {
  /** Name (OVF VirtualSystem `ovf:id`/`Name`, libvirt `<name>`). */
  readonly name: string;
  /** Lowercase canonical UUID, when the source has one. */
  readonly uuid?: string;
  /** Free-text description / annotation. */
  readonly description?: string;
  /** Guest OS: OVF CIM OS id (DSP0243 / CIM_OperatingSystem.OsType) and/or its short name. */
  readonly os?: { readonly cimId?: number; readonly name?: string };
  /** Guest architecture, as libvirt names it (`x86_64`, `i686`, `aarch64` …), when known. */
  readonly arch?: string;
  /** Firmware; `bios` when the source is silent (every format's default). */
  readonly firmware: Firmware;
  /** UEFI secure boot requested. */
  readonly secureBoot?: boolean;
  /** vCPUs. */
  readonly cpu: VmCpu;
  /** Guest memory in bytes. */
  readonly memoryBytes: number;
  /** Hard disks, in source order. */
  readonly disks: readonly VmDisk[];
  /** CD/DVD drives, in source order. */
  readonly cdroms: readonly VmCdrom[];
  /** NICs, in source order. */
  readonly nics: readonly VmNic[];
  /** Displays. */
  readonly graphics?: readonly VmGraphics[];
  /** Number of serial ports. */
  readonly serialPorts?: number;
  /** Has a virtual TPM. */
  readonly tpm?: boolean;
  /** Deploy-time properties (OVF ProductSection). */
  readonly properties?: readonly VmProperty[];
  /** Provenance. */
  readonly origin?: VmOrigin;
}

/** Severity of a report entry: `loss` = the target dropped something; `note` = a default was chosen or a value adapted. */
export type ReportSeverity = 'loss' | 'note';

/** One thing a reader, writer or converter could not carry over as-is. */
export interface ReportEntry {
  readonly severity: ReportSeverity;
  /** Model path or source element the entry is about (`disks[1].source`, `VirtualHardwareSection/Item[7]`). */
  readonly path: string;
  /** Lowercase sentence: what happened and why. */
  readonly message: string;
  /** The value that was dropped or adapted, when printable. */
  readonly value?: string;
}

/**
 * What a conversion could not express: every reader, writer and converter returns one, so nothing
 * is lost silently. An empty `entries` means a faithful conversion.
 */
export interface ConversionReport {
  /** Format read from (`ovf`, `libvirt`, `virt-image`, `model`). */
  readonly from: string;
  /** Format written to. */
  readonly to: string;
  readonly entries: readonly ReportEntry[];
}

/** Result of a reader/writer/converter: the value plus its report. */
export interface WithReport<T> {
  readonly value: T;
  readonly report: ConversionReport;
}
