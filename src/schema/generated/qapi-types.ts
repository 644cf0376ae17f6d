// Generated from schema/*.json by src/schema/generate-types.ts (npm run schema:types). Do not edit.

/** Arguments of a command without any, and the return of a command that returns nothing. */
export type QapiEmpty = Record<string, never>;

// schema/control.json

export type QMPCapability = 'oob';

export interface VersionTriple {
  'major': number | bigint;
  'minor': number | bigint;
  'micro': number | bigint;
}

export interface VersionInfo {
  'qemu': VersionTriple;
  'package': string;
}

export interface CommandInfo {
  'name': string;
}

export type ShutdownCause = 'none' | 'host-error' | 'host-qmp-quit' | 'host-qmp-system-reset' | 'host-signal' | 'host-ui' | 'guest-shutdown' | 'guest-reset' | 'guest-panic' | 'subsystem-reset' | 'snapshot-load';

export type SchemaMetaType = 'builtin' | 'enum' | 'array' | 'object' | 'alternate' | 'command' | 'event';

export type JSONType = 'string' | 'number' | 'int' | 'boolean' | 'null' | 'object' | 'array' | 'value';

export interface SchemaInfoBuiltin {
  'json-type': JSONType;
}

export interface SchemaInfoEnumMember {
  'name': string;
  'features'?: string[];
}

export interface SchemaInfoEnum {
  'members': SchemaInfoEnumMember[];
  'values': string[];
}

export interface SchemaInfoArray {
  'element-type': string;
}

export interface SchemaInfoObjectMember {
  'name': string;
  'type': string;
  'default'?: unknown;
  'features'?: string[];
}

export interface SchemaInfoObjectVariant {
  'case': string;
  'type': string;
}

export interface SchemaInfoObject {
  'members': SchemaInfoObjectMember[];
  'tag'?: string;
  'variants'?: SchemaInfoObjectVariant[];
}

export interface SchemaInfoAlternateMember {
  'type': string;
}

export interface SchemaInfoAlternate {
  'members': SchemaInfoAlternateMember[];
}

export interface SchemaInfoCommand {
  'arg-type': string;
  'ret-type': string;
  'allow-oob'?: boolean;
}

export interface SchemaInfoEvent {
  'arg-type': string;
}

export type SchemaInfo = {
  'name': string;
  'features'?: string[];
} & (
  | ({ 'meta-type': 'builtin' } & SchemaInfoBuiltin)
  | ({ 'meta-type': 'enum' } & SchemaInfoEnum)
  | ({ 'meta-type': 'array' } & SchemaInfoArray)
  | ({ 'meta-type': 'object' } & SchemaInfoObject)
  | ({ 'meta-type': 'alternate' } & SchemaInfoAlternate)
  | ({ 'meta-type': 'command' } & SchemaInfoCommand)
  | ({ 'meta-type': 'event' } & SchemaInfoEvent)
);

// schema/block-core.json

export type BlockdevDriver = 'blkdebug' | 'blklogwrites' | 'blkreplay' | 'blkverify' | 'bochs' | 'cloop' | 'compress' | 'copy-before-write' | 'copy-on-read' | 'dmg' | 'file' | 'snapshot-access' | 'ftp' | 'ftps' | 'gluster' | 'host_cdrom' | 'host_device' | 'http' | 'https' | 'iscsi' | 'luks' | 'nbd' | 'nfs' | 'null-aio' | 'null-co' | 'nvme' | 'parallels' | 'preallocate' | 'qcow' | 'qcow2' | 'qed' | 'quorum' | 'raw' | 'rbd' | 'replication' | 'ssh' | 'throttle' | 'vdi' | 'vhdx' | 'vmdk' | 'vpc' | 'vvfat';

export type BlockdevDiscardOptions = 'ignore' | 'unmap';

export type BlockdevDetectZeroesOptions = 'off' | 'on' | 'unmap';

export type BlockdevAioOptions = 'threads' | 'native' | 'io_uring';

export type OnOffAuto = 'auto' | 'on' | 'off';

export interface BlockdevCacheOptions {
  'direct'?: boolean;
  'no-flush'?: boolean;
}

export interface BlockdevOptionsFile {
  'filename': string;
  'pr-manager'?: string;
  'locking'?: OnOffAuto;
  'aio'?: BlockdevAioOptions;
  'aio-max-batch'?: number | bigint;
  'drop-cache'?: boolean;
  'x-check-cache-dropped'?: boolean;
}

export interface BlockdevOptionsNull {
  'size'?: number | bigint;
  'latency-ns'?: number | bigint;
  'read-zeroes'?: boolean;
}

export interface BlockdevOptionsGenericFormat {
  'file': BlockdevRef;
}

export interface BlockdevOptionsRaw {
  'file': BlockdevRef;
  'offset'?: number | bigint;
  'size'?: number | bigint;
}

export interface BlockdevOptionsGenericCOWFormat {
  'file': BlockdevRef;
  'backing'?: BlockdevRefOrNull;
}

export interface BlockdevOptionsQcow2 {
  'file': BlockdevRef;
  'backing'?: BlockdevRefOrNull;
  'lazy-refcounts'?: boolean;
  'pass-discard-request'?: boolean;
  'pass-discard-snapshot'?: boolean;
  'pass-discard-other'?: boolean;
  'cache-size'?: number | bigint;
  'l2-cache-size'?: number | bigint;
  'l2-cache-entry-size'?: number | bigint;
  'refcount-cache-size'?: number | bigint;
  'cache-clean-interval'?: number | bigint;
  'data-file'?: BlockdevRef;
}

export type BlkdebugEvent = 'l1_update' | 'l1_grow_alloc_table' | 'l1_grow_write_table' | 'l1_grow_activate_table' | 'l2_load' | 'l2_update' | 'l2_update_compressed' | 'l2_alloc_cow_read' | 'l2_alloc_write' | 'read_aio' | 'read_backing_aio' | 'read_compressed' | 'write_aio' | 'write_compressed' | 'vmstate_load' | 'vmstate_save' | 'cow_read' | 'cow_write' | 'reftable_load' | 'reftable_grow' | 'reftable_update' | 'refblock_load' | 'refblock_update' | 'refblock_update_part' | 'refblock_alloc' | 'refblock_alloc_hookup' | 'refblock_alloc_write' | 'refblock_alloc_write_blocks' | 'refblock_alloc_write_table' | 'refblock_alloc_switch_table' | 'cluster_alloc' | 'cluster_alloc_bytes' | 'cluster_free' | 'flush_to_os' | 'flush_to_disk' | 'pwritev_rmw_head' | 'pwritev_rmw_after_head' | 'pwritev_rmw_tail' | 'pwritev_rmw_after_tail' | 'pwritev' | 'pwritev_zero' | 'pwritev_done' | 'empty_image_prepare' | 'l1_shrink_write_table' | 'l1_shrink_free_l2_clusters' | 'cor_write' | 'cluster_alloc_space' | 'none';

export type BlkdebugIOType = 'read' | 'write' | 'write-zeroes' | 'discard' | 'flush' | 'block-status';

export interface BlkdebugInjectErrorOptions {
  'event': BlkdebugEvent;
  'state'?: number | bigint;
  'iotype'?: BlkdebugIOType;
  'errno'?: number | bigint;
  'sector'?: number | bigint;
  'once'?: boolean;
  'immediately'?: boolean;
}

export interface BlkdebugSetStateOptions {
  'event': BlkdebugEvent;
  'state'?: number | bigint;
  'new_state': number | bigint;
}

export interface BlockdevOptionsThrottle {
  'throttle-group': string;
  'file': BlockdevRef;
}

export type OnCbwError = 'break-guest-write' | 'break-snapshot';

export interface BlockdevOptionsCbw {
  'file': BlockdevRef;
  'target': BlockdevRef;
  'bitmap'?: BlockDirtyBitmap;
  'on-cbw-error'?: OnCbwError;
  'cbw-timeout'?: number;
}

export interface BlockdevOptionsBlkdebug {
  'image': BlockdevRef;
  'inject-error'?: BlkdebugInjectErrorOptions[];
  'set-state'?: BlkdebugSetStateOptions[];
}

export type BlockdevOptions = {
  'node-name'?: string;
  'discard'?: BlockdevDiscardOptions;
  'cache'?: BlockdevCacheOptions;
  'read-only'?: boolean;
  'auto-read-only'?: boolean;
  'force-share'?: boolean;
  'detect-zeroes'?: BlockdevDetectZeroesOptions;
} & (
  | ({ 'driver': 'blkdebug' } & BlockdevOptionsBlkdebug)
  | ({ 'driver': 'copy-before-write' } & BlockdevOptionsCbw)
  | ({ 'driver': 'file' } & BlockdevOptionsFile)
  | ({ 'driver': 'null-aio' } & BlockdevOptionsNull)
  | ({ 'driver': 'null-co' } & BlockdevOptionsNull)
  | ({ 'driver': 'qcow2' } & BlockdevOptionsQcow2)
  | ({ 'driver': 'raw' } & BlockdevOptionsRaw)
  | ({ 'driver': 'snapshot-access' } & BlockdevOptionsGenericFormat)
  | ({ 'driver': 'throttle' } & BlockdevOptionsThrottle)
  | { 'driver': 'blklogwrites' | 'blkreplay' | 'blkverify' | 'bochs' | 'cloop' | 'compress' | 'copy-on-read' | 'dmg' | 'ftp' | 'ftps' | 'gluster' | 'host_cdrom' | 'host_device' | 'http' | 'https' | 'iscsi' | 'luks' | 'nbd' | 'nfs' | 'nvme' | 'parallels' | 'preallocate' | 'qcow' | 'qed' | 'quorum' | 'rbd' | 'replication' | 'ssh' | 'vdi' | 'vhdx' | 'vmdk' | 'vpc' | 'vvfat' }
);

export type BlockdevRef = BlockdevOptions | string;

export type BlockdevRefOrNull = BlockdevOptions | string | null;

export interface BlockDirtyInfo {
  'name'?: string;
  'count': number | bigint;
  'granularity': number;
  'recording': boolean;
  'busy': boolean;
  'persistent': boolean;
  'inconsistent'?: boolean;
}

export interface ImageInfo {
  'filename': string;
  'format': string;
  'dirty-flag'?: boolean;
  'actual-size'?: number | bigint;
  'virtual-size': number | bigint;
  'cluster-size'?: number | bigint;
  'encrypted'?: boolean;
  'compressed'?: boolean;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'backing-filename-format'?: string;
  'snapshots'?: SnapshotInfo[];
  'backing-image'?: ImageInfo;
  'format-specific'?: ImageInfoSpecific;
}

export interface BlockdevCacheInfo {
  'writeback': boolean;
  'direct': boolean;
  'no-flush': boolean;
}

export interface BlockDeviceInfo {
  'file': string;
  'node-name'?: string;
  'ro': boolean;
  'drv': string;
  'backing_file'?: string;
  'backing_file_depth': number | bigint;
  'encrypted': boolean;
  'detect_zeroes': BlockdevDetectZeroesOptions;
  'bps': number | bigint;
  'bps_rd': number | bigint;
  'bps_wr': number | bigint;
  'iops': number | bigint;
  'iops_rd': number | bigint;
  'iops_wr': number | bigint;
  'image': ImageInfo;
  'bps_max'?: number | bigint;
  'bps_rd_max'?: number | bigint;
  'bps_wr_max'?: number | bigint;
  'iops_max'?: number | bigint;
  'iops_rd_max'?: number | bigint;
  'iops_wr_max'?: number | bigint;
  'bps_max_length'?: number | bigint;
  'bps_rd_max_length'?: number | bigint;
  'bps_wr_max_length'?: number | bigint;
  'iops_max_length'?: number | bigint;
  'iops_rd_max_length'?: number | bigint;
  'iops_wr_max_length'?: number | bigint;
  'iops_size'?: number | bigint;
  'group'?: string;
  'cache': BlockdevCacheInfo;
  'write_threshold': number | bigint;
  'dirty-bitmaps'?: BlockDirtyInfo[];
}

export interface BlockInfo {
  'device': string;
  'qdev'?: string;
  'type': string;
  'removable': boolean;
  'locked': boolean;
  'inserted'?: BlockDeviceInfo;
  'tray_open'?: boolean;
  'io-status'?: BlockDeviceIoStatus;
}

export type BlockDeviceIoStatus = 'ok' | 'failed' | 'nospace';

export interface BlockdevSnapshotSync {
  'device'?: string;
  'node-name'?: string;
  'snapshot-file': string;
  'snapshot-node-name'?: string;
  'format'?: string;
  'mode'?: NewImageMode;
}

export interface BlockdevSnapshot {
  'node': string;
  'overlay': string;
}

export interface BlockdevSnapshotInternal {
  'device': string;
  'name': string;
}

export interface BlockDirtyBitmap {
  'node': string;
  'name': string;
}

export interface BlockDirtyBitmapAdd {
  'node': string;
  'name': string;
  'granularity'?: number;
  'persistent'?: boolean;
  'disabled'?: boolean;
}

export type BlockDirtyBitmapOrStr = string | BlockDirtyBitmap;

export interface BlockDirtyBitmapMerge {
  'node': string;
  'target': string;
  'bitmaps': BlockDirtyBitmapOrStr[];
}

export interface BlockDirtyBitmapSha256 {
  'sha256': string;
}

// schema/image-info.json

export interface SnapshotInfo {
  'id': string;
  'name': string;
  'vm-state-size': number | bigint;
  'date-sec': number | bigint;
  'date-nsec': number | bigint;
  'vm-clock-sec': number | bigint;
  'vm-clock-nsec': number | bigint;
  'icount'?: number | bigint;
}

export type ImageInfoSpecificKind = 'qcow2' | 'vmdk' | 'luks' | 'rbd';

export type Qcow2BitmapInfoFlags = 'in-use' | 'auto';

export interface Qcow2BitmapInfo {
  'name': string;
  'granularity': number;
  'flags': Qcow2BitmapInfoFlags[];
}

export type BlockdevQcow2EncryptionFormat = 'aes' | 'luks';

export type QCryptoCipherAlgorithm = 'aes-128' | 'aes-192' | 'aes-256' | 'des' | '3des' | 'cast5-128' | 'serpent-128' | 'serpent-192' | 'serpent-256' | 'twofish-128' | 'twofish-192' | 'twofish-256';

export type QCryptoCipherMode = 'ecb' | 'cbc' | 'xts' | 'ctr';

export type QCryptoIVGenAlgorithm = 'plain' | 'plain64' | 'essiv';

export type QCryptoHashAlgorithm = 'md5' | 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512' | 'ripemd160';

export interface QCryptoBlockInfoLUKSSlot {
  'active': boolean;
  'iters'?: number | bigint;
  'stripes'?: number | bigint;
  'key-offset': number | bigint;
}

export interface QCryptoBlockInfoLUKS {
  'cipher-alg': QCryptoCipherAlgorithm;
  'cipher-mode': QCryptoCipherMode;
  'ivgen-alg': QCryptoIVGenAlgorithm;
  'ivgen-hash-alg'?: QCryptoHashAlgorithm;
  'hash-alg': QCryptoHashAlgorithm;
  'payload-offset': number | bigint;
  'master-key-iters': number | bigint;
  'uuid': string;
  'slots': QCryptoBlockInfoLUKSSlot[];
}

export interface QCryptoBlockInfoQCow {}

export type ImageInfoSpecificQCow2Encryption = (
  | ({ 'format': 'luks' } & QCryptoBlockInfoLUKS)
  | ({ 'format': 'aes' } & QCryptoBlockInfoQCow)
);

export interface ImageInfoSpecificQCow2 {
  'compat': string;
  'data-file'?: string;
  'data-file-raw'?: boolean;
  'extended-l2'?: boolean;
  'lazy-refcounts'?: boolean;
  'corrupt'?: boolean;
  'refcount-bits': number | bigint;
  'encrypt'?: ImageInfoSpecificQCow2Encryption;
  'bitmaps'?: Qcow2BitmapInfo[];
  'compression-type': Qcow2CompressionType;
}

export interface ImageInfoSpecificVmdk {
  'create-type': string;
  'cid': number | bigint;
  'parent-cid': number | bigint;
  'extents': ImageInfo[];
}

export type RbdImageEncryptionFormat = 'luks' | 'luks2';

export interface ImageInfoSpecificRbd {
  'encryption-format'?: RbdImageEncryptionFormat;
}

export interface ImageInfoSpecificQCow2Wrapper {
  'data': ImageInfoSpecificQCow2;
}

export interface ImageInfoSpecificVmdkWrapper {
  'data': ImageInfoSpecificVmdk;
}

export interface ImageInfoSpecificLUKSWrapper {
  'data': QCryptoBlockInfoLUKS;
}

export interface ImageInfoSpecificRbdWrapper {
  'data': ImageInfoSpecificRbd;
}

export type ImageInfoSpecific = (
  | ({ 'type': 'qcow2' } & ImageInfoSpecificQCow2Wrapper)
  | ({ 'type': 'vmdk' } & ImageInfoSpecificVmdkWrapper)
  | ({ 'type': 'luks' } & ImageInfoSpecificLUKSWrapper)
  | ({ 'type': 'rbd' } & ImageInfoSpecificRbdWrapper)
);

// schema/transaction.json

export interface Abort {}

export type ActionCompletionMode = 'individual' | 'grouped';

export type TransactionActionKind = 'abort' | 'block-dirty-bitmap-add' | 'block-dirty-bitmap-remove' | 'block-dirty-bitmap-clear' | 'block-dirty-bitmap-enable' | 'block-dirty-bitmap-disable' | 'block-dirty-bitmap-merge' | 'blockdev-backup' | 'blockdev-snapshot' | 'blockdev-snapshot-internal-sync' | 'blockdev-snapshot-sync' | 'drive-backup';

export interface AbortWrapper {
  'data': Abort;
}

export interface BlockDirtyBitmapAddWrapper {
  'data': BlockDirtyBitmapAdd;
}

export interface BlockDirtyBitmapWrapper {
  'data': BlockDirtyBitmap;
}

export interface BlockDirtyBitmapMergeWrapper {
  'data': BlockDirtyBitmapMerge;
}

export interface BlockdevSnapshotWrapper {
  'data': BlockdevSnapshot;
}

export interface BlockdevSnapshotSyncWrapper {
  'data': BlockdevSnapshotSync;
}

export interface BlockdevBackupWrapper {
  'data': BlockdevBackup;
}

export interface DriveBackupWrapper {
  'data': DriveBackup;
}

export interface BlockdevSnapshotInternalWrapper {
  'data': BlockdevSnapshotInternal;
}

export type TransactionAction = (
  | ({ 'type': 'abort' } & AbortWrapper)
  | ({ 'type': 'block-dirty-bitmap-add' } & BlockDirtyBitmapAddWrapper)
  | ({ 'type': 'block-dirty-bitmap-remove' } & BlockDirtyBitmapWrapper)
  | ({ 'type': 'block-dirty-bitmap-clear' } & BlockDirtyBitmapWrapper)
  | ({ 'type': 'block-dirty-bitmap-enable' } & BlockDirtyBitmapWrapper)
  | ({ 'type': 'block-dirty-bitmap-disable' } & BlockDirtyBitmapWrapper)
  | ({ 'type': 'block-dirty-bitmap-merge' } & BlockDirtyBitmapMergeWrapper)
  | ({ 'type': 'blockdev-backup' } & BlockdevBackupWrapper)
  | ({ 'type': 'blockdev-snapshot' } & BlockdevSnapshotWrapper)
  | ({ 'type': 'blockdev-snapshot-internal-sync' } & BlockdevSnapshotInternalWrapper)
  | ({ 'type': 'blockdev-snapshot-sync' } & BlockdevSnapshotSyncWrapper)
  | ({ 'type': 'drive-backup' } & DriveBackupWrapper)
);

export interface TransactionProperties {
  'completion-mode'?: ActionCompletionMode;
}

// schema/block-export.json

export type SocketAddressType = 'inet' | 'unix' | 'vsock' | 'fd';

export interface InetSocketAddress {
  'host': string;
  'port': string;
  'numeric'?: boolean;
  'to'?: number;
  'ipv4'?: boolean;
  'ipv6'?: boolean;
  'keep-alive'?: boolean;
  'mptcp'?: boolean;
}

export interface UnixSocketAddress {
  'path': string;
  'abstract'?: boolean;
  'tight'?: boolean;
}

export interface VsockSocketAddress {
  'cid': string;
  'port': string;
}

export interface String {
  'str': string;
}

export interface InetSocketAddressWrapper {
  'data': InetSocketAddress;
}

export interface UnixSocketAddressWrapper {
  'data': UnixSocketAddress;
}

export interface VsockSocketAddressWrapper {
  'data': VsockSocketAddress;
}

export interface StringWrapper {
  'data': String;
}

export type SocketAddressLegacy = (
  | ({ 'type': 'inet' } & InetSocketAddressWrapper)
  | ({ 'type': 'unix' } & UnixSocketAddressWrapper)
  | ({ 'type': 'vsock' } & VsockSocketAddressWrapper)
  | ({ 'type': 'fd' } & StringWrapper)
);

export type BlockExportType = 'nbd' | 'vhost-user-blk' | 'fuse' | 'vduse-blk';

export interface BlockExportOptionsNbdBase {
  'name'?: string;
  'description'?: string;
}

export interface BlockExportOptionsNbd {
  'name'?: string;
  'description'?: string;
  'bitmaps'?: BlockDirtyBitmapOrStr[];
  'allocation-depth'?: boolean;
}

export interface BlockExportOptionsUnsupported {}

export interface NbdServerAddOptions {
  'name'?: string;
  'description'?: string;
  'device': string;
  'writable'?: boolean;
  'bitmap'?: string;
}

export type BlockExportOptions = {
  'id': string;
  'fixed-iothread'?: boolean;
  'iothread'?: string;
  'node-name': string;
  'writable'?: boolean;
  'writethrough'?: boolean;
} & (
  | ({ 'type': 'nbd' } & BlockExportOptionsNbd)
  | ({ 'type': 'vhost-user-blk' } & BlockExportOptionsUnsupported)
  | ({ 'type': 'fuse' } & BlockExportOptionsUnsupported)
  | ({ 'type': 'vduse-blk' } & BlockExportOptionsUnsupported)
);

export type BlockExportRemoveMode = 'safe' | 'hard';

export interface BlockExportInfo {
  'id': string;
  'type': BlockExportType;
  'node-name': string;
  'shutting-down': boolean;
}

// schema/job.json

export type JobType = 'commit' | 'stream' | 'mirror' | 'backup' | 'create' | 'amend' | 'snapshot-load' | 'snapshot-save' | 'snapshot-delete';

export type JobStatus = 'undefined' | 'created' | 'running' | 'paused' | 'ready' | 'standby' | 'waiting' | 'pending' | 'aborting' | 'concluded' | 'null';

export interface JobInfo {
  'id': string;
  'type': JobType;
  'status': JobStatus;
  'current-progress': number | bigint;
  'total-progress': number | bigint;
  'error'?: string;
}

export interface BlockJobInfo {
  'type': string;
  'device': string;
  'len': number | bigint;
  'offset': number | bigint;
  'busy': boolean;
  'paused': boolean;
  'speed': number | bigint;
  'io-status': BlockDeviceIoStatus;
  'ready': boolean;
  'status': JobStatus;
  'auto-finalize': boolean;
  'auto-dismiss': boolean;
  'error'?: string;
}

export type IoOperationType = 'read' | 'write';

export type BlockErrorAction = 'ignore' | 'report' | 'stop';

export type MirrorSyncMode = 'top' | 'full' | 'none' | 'incremental' | 'bitmap';

export type BitmapSyncMode = 'on-success' | 'never' | 'always';

export type BlockdevOnError = 'report' | 'ignore' | 'enospc' | 'stop' | 'auto';

export type NewImageMode = 'existing' | 'absolute-paths';

export interface BackupPerf {
  'use-copy-range'?: boolean;
  'max-workers'?: number | bigint;
  'max-chunk'?: number | bigint;
}

export interface BackupCommon {
  'job-id'?: string;
  'device': string;
  'sync': MirrorSyncMode;
  'speed'?: number | bigint;
  'bitmap'?: string;
  'bitmap-mode'?: BitmapSyncMode;
  'compress'?: boolean;
  'on-source-error'?: BlockdevOnError;
  'on-target-error'?: BlockdevOnError;
  'auto-finalize'?: boolean;
  'auto-dismiss'?: boolean;
  'filter-node-name'?: string;
  'x-perf'?: BackupPerf;
}

export interface DriveBackup {
  'job-id'?: string;
  'device': string;
  'sync': MirrorSyncMode;
  'speed'?: number | bigint;
  'bitmap'?: string;
  'bitmap-mode'?: BitmapSyncMode;
  'compress'?: boolean;
  'on-source-error'?: BlockdevOnError;
  'on-target-error'?: BlockdevOnError;
  'auto-finalize'?: boolean;
  'auto-dismiss'?: boolean;
  'filter-node-name'?: string;
  'x-perf'?: BackupPerf;
  'target': string;
  'format'?: string;
  'mode'?: NewImageMode;
}

export interface BlockdevBackup {
  'job-id'?: string;
  'device': string;
  'sync': MirrorSyncMode;
  'speed'?: number | bigint;
  'bitmap'?: string;
  'bitmap-mode'?: BitmapSyncMode;
  'compress'?: boolean;
  'on-source-error'?: BlockdevOnError;
  'on-target-error'?: BlockdevOnError;
  'auto-finalize'?: boolean;
  'auto-dismiss'?: boolean;
  'filter-node-name'?: string;
  'x-perf'?: BackupPerf;
  'target': string;
}

export type RunState = 'debug' | 'inmigrate' | 'internal-error' | 'io-error' | 'paused' | 'postmigrate' | 'prelaunch' | 'finish-migrate' | 'restore-vm' | 'running' | 'save-vm' | 'shutdown' | 'suspended' | 'watchdog' | 'guest-panicked' | 'colo';

export interface StatusInfo {
  'running': boolean;
  'singlestep': boolean;
  'status': RunState;
}

export interface NameInfo {
  'name'?: string;
}

// schema/block-create.json

export type PreallocMode = 'off' | 'metadata' | 'falloc' | 'full';

export interface BlockdevCreateOptionsFile {
  'filename': string;
  'size': number | bigint;
  'preallocation'?: PreallocMode;
  'nocow'?: boolean;
  'extent-size-hint'?: number | bigint;
}

export type BlockdevQcow2Version = 'v2' | 'v3';

export type Qcow2CompressionType = 'zlib' | 'zstd';

export type QCryptoBlockFormat = 'qcow' | 'luks';

export interface QCryptoBlockOptionsQCow {
  'key-secret'?: string;
}

export interface QCryptoBlockCreateOptionsLUKS {
  'key-secret'?: string;
}

export type QCryptoBlockCreateOptions = (
  | ({ 'format': 'qcow' } & QCryptoBlockOptionsQCow)
  | ({ 'format': 'luks' } & QCryptoBlockCreateOptionsLUKS)
);

export interface BlockdevCreateOptionsQcow2 {
  'file': BlockdevRef;
  'data-file'?: BlockdevRef;
  'data-file-raw'?: boolean;
  'extended-l2'?: boolean;
  'size': number | bigint;
  'version'?: BlockdevQcow2Version;
  'backing-file'?: string;
  'backing-fmt'?: BlockdevDriver;
  'encrypt'?: QCryptoBlockCreateOptions;
  'cluster-size'?: number | bigint;
  'preallocation'?: PreallocMode;
  'lazy-refcounts'?: boolean;
  'refcount-bits'?: number | bigint;
  'compression-type'?: Qcow2CompressionType;
}

export type BlockdevCreateOptions = (
  | ({ 'driver': 'file' } & BlockdevCreateOptionsFile)
  | ({ 'driver': 'qcow2' } & BlockdevCreateOptionsQcow2)
  | { 'driver': 'blkdebug' | 'blklogwrites' | 'blkreplay' | 'blkverify' | 'bochs' | 'cloop' | 'compress' | 'copy-before-write' | 'copy-on-read' | 'dmg' | 'snapshot-access' | 'ftp' | 'ftps' | 'gluster' | 'host_cdrom' | 'host_device' | 'http' | 'https' | 'iscsi' | 'luks' | 'nbd' | 'nfs' | 'null-aio' | 'null-co' | 'nvme' | 'parallels' | 'preallocate' | 'qcow' | 'qed' | 'quorum' | 'raw' | 'rbd' | 'replication' | 'ssh' | 'throttle' | 'vdi' | 'vhdx' | 'vmdk' | 'vpc' | 'vvfat' }
);

// schema/qom.json

export type ObjectType = 'authz-list' | 'authz-listfile' | 'authz-pam' | 'authz-simple' | 'can-bus' | 'can-host-socketcan' | 'colo-compare' | 'cryptodev-backend' | 'cryptodev-backend-builtin' | 'cryptodev-backend-lkcf' | 'cryptodev-vhost-user' | 'dbus-vmstate' | 'filter-buffer' | 'filter-dump' | 'filter-mirror' | 'filter-redirector' | 'filter-replay' | 'filter-rewriter' | 'input-barrier' | 'input-linux' | 'iothread' | 'main-loop' | 'memory-backend-epc' | 'memory-backend-file' | 'memory-backend-memfd' | 'memory-backend-ram' | 'pef-guest' | 'pr-manager-helper' | 'qtest' | 'rng-builtin' | 'rng-egd' | 'rng-random' | 'secret' | 'secret_keyring' | 'sev-guest' | 'thread-context' | 's390-pv-guest' | 'throttle-group' | 'tls-creds-anon' | 'tls-creds-psk' | 'tls-creds-x509' | 'tls-cipher-suites' | 'x-remote-object' | 'x-vfio-user-server';

export interface ThrottleLimits {
  'iops-total'?: number | bigint;
  'iops-total-max'?: number | bigint;
  'iops-total-max-length'?: number | bigint;
  'iops-read'?: number | bigint;
  'iops-read-max'?: number | bigint;
  'iops-read-max-length'?: number | bigint;
  'iops-write'?: number | bigint;
  'iops-write-max'?: number | bigint;
  'iops-write-max-length'?: number | bigint;
  'bps-total'?: number | bigint;
  'bps-total-max'?: number | bigint;
  'bps-total-max-length'?: number | bigint;
  'bps-read'?: number | bigint;
  'bps-read-max'?: number | bigint;
  'bps-read-max-length'?: number | bigint;
  'bps-write'?: number | bigint;
  'bps-write-max'?: number | bigint;
  'bps-write-max-length'?: number | bigint;
  'iops-size'?: number | bigint;
}

export interface ThrottleGroupProperties {
  'limits'?: ThrottleLimits;
  'x-iops-total'?: number | bigint;
  'x-iops-total-max'?: number | bigint;
  'x-iops-total-max-length'?: number | bigint;
  'x-iops-read'?: number | bigint;
  'x-iops-read-max'?: number | bigint;
  'x-iops-read-max-length'?: number | bigint;
  'x-iops-write'?: number | bigint;
  'x-iops-write-max'?: number | bigint;
  'x-iops-write-max-length'?: number | bigint;
  'x-bps-total'?: number | bigint;
  'x-bps-total-max'?: number | bigint;
  'x-bps-total-max-length'?: number | bigint;
  'x-bps-read'?: number | bigint;
  'x-bps-read-max'?: number | bigint;
  'x-bps-read-max-length'?: number | bigint;
  'x-bps-write'?: number | bigint;
  'x-bps-write-max'?: number | bigint;
  'x-bps-write-max-length'?: number | bigint;
  'x-iops-size'?: number | bigint;
}

export type ObjectOptions = {
  'id': string;
} & (
  | ({ 'qom-type': 'throttle-group' } & ThrottleGroupProperties)
  | { 'qom-type': 'authz-list' | 'authz-listfile' | 'authz-pam' | 'authz-simple' | 'can-bus' | 'can-host-socketcan' | 'colo-compare' | 'cryptodev-backend' | 'cryptodev-backend-builtin' | 'cryptodev-backend-lkcf' | 'cryptodev-vhost-user' | 'dbus-vmstate' | 'filter-buffer' | 'filter-dump' | 'filter-mirror' | 'filter-redirector' | 'filter-replay' | 'filter-rewriter' | 'input-barrier' | 'input-linux' | 'iothread' | 'main-loop' | 'memory-backend-epc' | 'memory-backend-file' | 'memory-backend-memfd' | 'memory-backend-ram' | 'pef-guest' | 'pr-manager-helper' | 'qtest' | 'rng-builtin' | 'rng-egd' | 'rng-random' | 'secret' | 'secret_keyring' | 'sev-guest' | 'thread-context' | 's390-pv-guest' | 'tls-creds-anon' | 'tls-creds-psk' | 'tls-creds-x509' | 'tls-cipher-suites' | 'x-remote-object' | 'x-vfio-user-server' }
);

// schema/qblockd.json

export interface XQblockdBitmap {
  'name': string;
  'granularity': number;
  'count': number | bigint;
  'recording': boolean;
  'enabled': boolean;
  'persistent': boolean;
  'busy': boolean;
  'readonly': boolean;
  'inconsistent': boolean;
}

export interface XQblockdNode {
  'node-name': string;
  'driver': string;
  'size': number | bigint;
  'read-only': boolean;
  'device'?: string;
  'children': string[];
  'bitmaps': XQblockdBitmap[];
}

export interface XQblockdDirtyMap {
  'offset': number | bigint;
  'length': number | bigint;
  'granularity': number;
  'count': number | bigint;
  'density': string;
}

export type XQblockdTransport = 'unix' | 'websocket';

export interface XQblockdClientInfo {
  'id': number | bigint;
  'transport': XQblockdTransport;
  'watching': boolean;
}

export interface XQblockdExport {
  'id': string;
  'type': BlockExportType;
  'name': string;
  'node-name': string;
  'writable': boolean;
  'shutting-down': boolean;
  'bitmaps': string[];
  'clients': number | bigint;
}

/** Every named schema type, by its QAPI name. */
export interface QapiTypes {
  'QMPCapability': QMPCapability;
  'VersionTriple': VersionTriple;
  'VersionInfo': VersionInfo;
  'CommandInfo': CommandInfo;
  'ShutdownCause': ShutdownCause;
  'SchemaMetaType': SchemaMetaType;
  'JSONType': JSONType;
  'SchemaInfoBuiltin': SchemaInfoBuiltin;
  'SchemaInfoEnumMember': SchemaInfoEnumMember;
  'SchemaInfoEnum': SchemaInfoEnum;
  'SchemaInfoArray': SchemaInfoArray;
  'SchemaInfoObjectMember': SchemaInfoObjectMember;
  'SchemaInfoObjectVariant': SchemaInfoObjectVariant;
  'SchemaInfoObject': SchemaInfoObject;
  'SchemaInfoAlternateMember': SchemaInfoAlternateMember;
  'SchemaInfoAlternate': SchemaInfoAlternate;
  'SchemaInfoCommand': SchemaInfoCommand;
  'SchemaInfoEvent': SchemaInfoEvent;
  'SchemaInfo': SchemaInfo;
  'BlockdevDriver': BlockdevDriver;
  'BlockdevDiscardOptions': BlockdevDiscardOptions;
  'BlockdevDetectZeroesOptions': BlockdevDetectZeroesOptions;
  'BlockdevAioOptions': BlockdevAioOptions;
  'OnOffAuto': OnOffAuto;
  'BlockdevCacheOptions': BlockdevCacheOptions;
  'BlockdevOptionsFile': BlockdevOptionsFile;
  'BlockdevOptionsNull': BlockdevOptionsNull;
  'BlockdevOptionsGenericFormat': BlockdevOptionsGenericFormat;
  'BlockdevOptionsRaw': BlockdevOptionsRaw;
  'BlockdevOptionsGenericCOWFormat': BlockdevOptionsGenericCOWFormat;
  'BlockdevOptionsQcow2': BlockdevOptionsQcow2;
  'BlkdebugEvent': BlkdebugEvent;
  'BlkdebugIOType': BlkdebugIOType;
  'BlkdebugInjectErrorOptions': BlkdebugInjectErrorOptions;
  'BlkdebugSetStateOptions': BlkdebugSetStateOptions;
  'BlockdevOptionsThrottle': BlockdevOptionsThrottle;
  'OnCbwError': OnCbwError;
  'BlockdevOptionsCbw': BlockdevOptionsCbw;
  'BlockdevOptionsBlkdebug': BlockdevOptionsBlkdebug;
  'BlockdevOptions': BlockdevOptions;
  'BlockdevRef': BlockdevRef;
  'BlockdevRefOrNull': BlockdevRefOrNull;
  'BlockDirtyInfo': BlockDirtyInfo;
  'ImageInfo': ImageInfo;
  'BlockdevCacheInfo': BlockdevCacheInfo;
  'BlockDeviceInfo': BlockDeviceInfo;
  'BlockInfo': BlockInfo;
  'BlockDeviceIoStatus': BlockDeviceIoStatus;
  'BlockdevSnapshotSync': BlockdevSnapshotSync;
  'BlockdevSnapshot': BlockdevSnapshot;
  'BlockdevSnapshotInternal': BlockdevSnapshotInternal;
  'BlockDirtyBitmap': BlockDirtyBitmap;
  'BlockDirtyBitmapAdd': BlockDirtyBitmapAdd;
  'BlockDirtyBitmapOrStr': BlockDirtyBitmapOrStr;
  'BlockDirtyBitmapMerge': BlockDirtyBitmapMerge;
  'BlockDirtyBitmapSha256': BlockDirtyBitmapSha256;
  'SnapshotInfo': SnapshotInfo;
  'ImageInfoSpecificKind': ImageInfoSpecificKind;
  'Qcow2BitmapInfoFlags': Qcow2BitmapInfoFlags;
  'Qcow2BitmapInfo': Qcow2BitmapInfo;
  'BlockdevQcow2EncryptionFormat': BlockdevQcow2EncryptionFormat;
  'QCryptoCipherAlgorithm': QCryptoCipherAlgorithm;
  'QCryptoCipherMode': QCryptoCipherMode;
  'QCryptoIVGenAlgorithm': QCryptoIVGenAlgorithm;
  'QCryptoHashAlgorithm': QCryptoHashAlgorithm;
  'QCryptoBlockInfoLUKSSlot': QCryptoBlockInfoLUKSSlot;
  'QCryptoBlockInfoLUKS': QCryptoBlockInfoLUKS;
  'QCryptoBlockInfoQCow': QCryptoBlockInfoQCow;
  'ImageInfoSpecificQCow2Encryption': ImageInfoSpecificQCow2Encryption;
  'ImageInfoSpecificQCow2': ImageInfoSpecificQCow2;
  'ImageInfoSpecificVmdk': ImageInfoSpecificVmdk;
  'RbdImageEncryptionFormat': RbdImageEncryptionFormat;
  'ImageInfoSpecificRbd': ImageInfoSpecificRbd;
  'ImageInfoSpecificQCow2Wrapper': ImageInfoSpecificQCow2Wrapper;
  'ImageInfoSpecificVmdkWrapper': ImageInfoSpecificVmdkWrapper;
  'ImageInfoSpecificLUKSWrapper': ImageInfoSpecificLUKSWrapper;
  'ImageInfoSpecificRbdWrapper': ImageInfoSpecificRbdWrapper;
  'ImageInfoSpecific': ImageInfoSpecific;
  'Abort': Abort;
  'ActionCompletionMode': ActionCompletionMode;
  'TransactionActionKind': TransactionActionKind;
  'AbortWrapper': AbortWrapper;
  'BlockDirtyBitmapAddWrapper': BlockDirtyBitmapAddWrapper;
  'BlockDirtyBitmapWrapper': BlockDirtyBitmapWrapper;
  'BlockDirtyBitmapMergeWrapper': BlockDirtyBitmapMergeWrapper;
  'BlockdevSnapshotWrapper': BlockdevSnapshotWrapper;
  'BlockdevSnapshotSyncWrapper': BlockdevSnapshotSyncWrapper;
  'BlockdevBackupWrapper': BlockdevBackupWrapper;
  'DriveBackupWrapper': DriveBackupWrapper;
  'BlockdevSnapshotInternalWrapper': BlockdevSnapshotInternalWrapper;
  'TransactionAction': TransactionAction;
  'TransactionProperties': TransactionProperties;
  'SocketAddressType': SocketAddressType;
  'InetSocketAddress': InetSocketAddress;
  'UnixSocketAddress': UnixSocketAddress;
  'VsockSocketAddress': VsockSocketAddress;
  'String': String;
  'InetSocketAddressWrapper': InetSocketAddressWrapper;
  'UnixSocketAddressWrapper': UnixSocketAddressWrapper;
  'VsockSocketAddressWrapper': VsockSocketAddressWrapper;
  'StringWrapper': StringWrapper;
  'SocketAddressLegacy': SocketAddressLegacy;
  'BlockExportType': BlockExportType;
  'BlockExportOptionsNbdBase': BlockExportOptionsNbdBase;
  'BlockExportOptionsNbd': BlockExportOptionsNbd;
  'BlockExportOptionsUnsupported': BlockExportOptionsUnsupported;
  'NbdServerAddOptions': NbdServerAddOptions;
  'BlockExportOptions': BlockExportOptions;
  'BlockExportRemoveMode': BlockExportRemoveMode;
  'BlockExportInfo': BlockExportInfo;
  'JobType': JobType;
  'JobStatus': JobStatus;
  'JobInfo': JobInfo;
  'BlockJobInfo': BlockJobInfo;
  'IoOperationType': IoOperationType;
  'BlockErrorAction': BlockErrorAction;
  'MirrorSyncMode': MirrorSyncMode;
  'BitmapSyncMode': BitmapSyncMode;
  'BlockdevOnError': BlockdevOnError;
  'NewImageMode': NewImageMode;
  'BackupPerf': BackupPerf;
  'BackupCommon': BackupCommon;
  'DriveBackup': DriveBackup;
  'BlockdevBackup': BlockdevBackup;
  'RunState': RunState;
  'StatusInfo': StatusInfo;
  'NameInfo': NameInfo;
  'PreallocMode': PreallocMode;
  'BlockdevCreateOptionsFile': BlockdevCreateOptionsFile;
  'BlockdevQcow2Version': BlockdevQcow2Version;
  'Qcow2CompressionType': Qcow2CompressionType;
  'QCryptoBlockFormat': QCryptoBlockFormat;
  'QCryptoBlockOptionsQCow': QCryptoBlockOptionsQCow;
  'QCryptoBlockCreateOptionsLUKS': QCryptoBlockCreateOptionsLUKS;
  'QCryptoBlockCreateOptions': QCryptoBlockCreateOptions;
  'BlockdevCreateOptionsQcow2': BlockdevCreateOptionsQcow2;
  'BlockdevCreateOptions': BlockdevCreateOptions;
  'ObjectType': ObjectType;
  'ThrottleLimits': ThrottleLimits;
  'ThrottleGroupProperties': ThrottleGroupProperties;
  'ObjectOptions': ObjectOptions;
  'XQblockdBitmap': XQblockdBitmap;
  'XQblockdNode': XQblockdNode;
  'XQblockdDirtyMap': XQblockdDirtyMap;
  'XQblockdTransport': XQblockdTransport;
  'XQblockdClientInfo': XQblockdClientInfo;
  'XQblockdExport': XQblockdExport;
}

/** Each command's arguments as the dispatcher hands them to its handler. */
export interface CommandArguments {
  'qmp_capabilities': {
    'enable'?: QMPCapability[];
  };
  'query-version': QapiEmpty;
  'query-commands': QapiEmpty;
  'query-qmp-schema': QapiEmpty;
  'quit': QapiEmpty;
  'human-monitor-command': {
    'command-line': string;
    'cpu-index'?: number | bigint;
  };
  'blockdev-add': BlockdevOptions;
  'blockdev-del': {
    'node-name': string;
  };
  'blockdev-reopen': {
    'options': BlockdevOptions[];
  };
  'block_resize': {
    'device'?: string;
    'node-name'?: string;
    'size': number | bigint;
  };
  'query-block': QapiEmpty;
  'query-named-block-nodes': {
    'flat'?: boolean;
  };
  'blockdev-snapshot-sync': BlockdevSnapshotSync;
  'blockdev-snapshot': BlockdevSnapshot;
  'block-dirty-bitmap-add': BlockDirtyBitmapAdd;
  'block-dirty-bitmap-remove': BlockDirtyBitmap;
  'block-dirty-bitmap-clear': BlockDirtyBitmap;
  'block-dirty-bitmap-enable': BlockDirtyBitmap;
  'block-dirty-bitmap-disable': BlockDirtyBitmap;
  'block-dirty-bitmap-merge': BlockDirtyBitmapMerge;
  'x-debug-block-dirty-bitmap-sha256': BlockDirtyBitmap;
  'transaction': {
    'actions': TransactionAction[];
    'properties'?: TransactionProperties;
  };
  'nbd-server-start': {
    'addr': SocketAddressLegacy;
    'tls-creds'?: string;
    'tls-authz'?: string;
    'max-connections'?: number;
  };
  'nbd-server-stop': QapiEmpty;
  'nbd-server-add': NbdServerAddOptions;
  'block-export-add': BlockExportOptions;
  'nbd-server-remove': {
    'name': string;
    'mode'?: BlockExportRemoveMode;
  };
  'block-export-del': {
    'id': string;
    'mode'?: BlockExportRemoveMode;
  };
  'query-block-exports': QapiEmpty;
  'query-jobs': QapiEmpty;
  'job-pause': {
    'id': string;
  };
  'job-resume': {
    'id': string;
  };
  'job-cancel': {
    'id': string;
  };
  'job-complete': {
    'id': string;
  };
  'job-dismiss': {
    'id': string;
  };
  'job-finalize': {
    'id': string;
  };
  'query-block-jobs': QapiEmpty;
  'block-job-set-speed': {
    'device': string;
    'speed': number | bigint;
  };
  'block-job-cancel': {
    'device': string;
    'force'?: boolean;
  };
  'block-job-pause': {
    'device': string;
  };
  'block-job-resume': {
    'device': string;
  };
  'block-job-complete': {
    'device': string;
  };
  'block-job-dismiss': {
    'id': string;
  };
  'block-job-finalize': {
    'id': string;
  };
  'blockdev-backup': BlockdevBackup;
  'drive-backup': DriveBackup;
  'query-status': QapiEmpty;
  'query-name': QapiEmpty;
  'stop': QapiEmpty;
  'cont': QapiEmpty;
  'blockdev-create': {
    'job-id': string;
    'options': BlockdevCreateOptions;
  };
  'object-add': ObjectOptions;
  'object-del': {
    'id': string;
  };
  'qom-get': {
    'path': string;
    'property': string;
  };
  'qom-set': {
    'path': string;
    'property': string;
    'value': unknown;
  };
  'x-qblockd-watch': QapiEmpty;
  'x-qblockd-query-graph': QapiEmpty;
  'x-qblockd-dirty-map': {
    'node': string;
    'name': string;
    'offset'?: number | bigint;
    'length'?: number | bigint;
    'width': number;
  };
  'x-qblockd-query-clients': QapiEmpty;
  'x-qblockd-query-exports': QapiEmpty;
}

/** What each command's handler returns. */
export interface CommandResults {
  'qmp_capabilities': QapiEmpty;
  'query-version': VersionInfo;
  'query-commands': CommandInfo[];
  'query-qmp-schema': SchemaInfo[];
  'quit': QapiEmpty;
  'human-monitor-command': string;
  'blockdev-add': QapiEmpty;
  'blockdev-del': QapiEmpty;
  'blockdev-reopen': QapiEmpty;
  'block_resize': QapiEmpty;
  'query-block': BlockInfo[];
  'query-named-block-nodes': BlockDeviceInfo[];
  'blockdev-snapshot-sync': QapiEmpty;
  'blockdev-snapshot': QapiEmpty;
  'block-dirty-bitmap-add': QapiEmpty;
  'block-dirty-bitmap-remove': QapiEmpty;
  'block-dirty-bitmap-clear': QapiEmpty;
  'block-dirty-bitmap-enable': QapiEmpty;
  'block-dirty-bitmap-disable': QapiEmpty;
  'block-dirty-bitmap-merge': QapiEmpty;
  'x-debug-block-dirty-bitmap-sha256': BlockDirtyBitmapSha256;
  'transaction': QapiEmpty;
  'nbd-server-start': QapiEmpty;
  'nbd-server-stop': QapiEmpty;
  'nbd-server-add': QapiEmpty;
  'block-export-add': QapiEmpty;
  'nbd-server-remove': QapiEmpty;
  'block-export-del': QapiEmpty;
  'query-block-exports': BlockExportInfo[];
  'query-jobs': JobInfo[];
  'job-pause': QapiEmpty;
  'job-resume': QapiEmpty;
  'job-cancel': QapiEmpty;
  'job-complete': QapiEmpty;
  'job-dismiss': QapiEmpty;
  'job-finalize': QapiEmpty;
  'query-block-jobs': BlockJobInfo[];
  'block-job-set-speed': QapiEmpty;
  'block-job-cancel': QapiEmpty;
  'block-job-pause': QapiEmpty;
  'block-job-resume': QapiEmpty;
  'block-job-complete': QapiEmpty;
  'block-job-dismiss': QapiEmpty;
  'block-job-finalize': QapiEmpty;
  'blockdev-backup': QapiEmpty;
  'drive-backup': QapiEmpty;
  'query-status': StatusInfo;
  'query-name': NameInfo;
  'stop': QapiEmpty;
  'cont': QapiEmpty;
  'blockdev-create': QapiEmpty;
  'object-add': QapiEmpty;
  'object-del': QapiEmpty;
  'qom-get': unknown;
  'qom-set': QapiEmpty;
  'x-qblockd-watch': QapiEmpty;
  'x-qblockd-query-graph': XQblockdNode[];
  'x-qblockd-dirty-map': XQblockdDirtyMap;
  'x-qblockd-query-clients': XQblockdClientInfo[];
  'x-qblockd-query-exports': XQblockdExport[];
}

export type CommandName = keyof CommandArguments;

/** Each event's data member. */
export interface EventData {
  'SHUTDOWN': {
    'guest': boolean;
    'reason': ShutdownCause;
  };
  'BLOCK_EXPORT_DELETED': {
    'id': string;
  };
  'JOB_STATUS_CHANGE': {
    'id': string;
    'status': JobStatus;
  };
  'BLOCK_JOB_COMPLETED': {
    'type': JobType;
    'device': string;
    'len': number | bigint;
    'offset': number | bigint;
    'speed': number | bigint;
    'error'?: string;
  };
  'BLOCK_JOB_CANCELLED': {
    'type': JobType;
    'device': string;
    'len': number | bigint;
    'offset': number | bigint;
    'speed': number | bigint;
  };
  'BLOCK_JOB_ERROR': {
    'device': string;
    'operation': IoOperationType;
    'action': BlockErrorAction;
  };
  'BLOCK_JOB_READY': {
    'type': JobType;
    'device': string;
    'len': number | bigint;
    'offset': number | bigint;
    'speed': number | bigint;
  };
  'BLOCK_JOB_PENDING': {
    'type': JobType;
    'id': string;
  };
  'STOP': undefined;
  'RESUME': undefined;
  'X_QBLOCKD_BITMAP_CHANGED': {
    'node': string;
    'name': string;
    'count': number | bigint;
  };
  'X_QBLOCKD_GRAPH_CHANGED': undefined;
}

export type EventName = keyof EventData;
