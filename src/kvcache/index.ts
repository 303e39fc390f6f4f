// KV cache bookkeeping: block pool, LRU free queue, hash-chained prefix reuse, sizing.
export { FreeBlockQueue } from "./free-queue.js";
export { type BlockHash, type ExtraKeys, extendBlockHashes, extraKeyString } from "./block-hash.js";
export { BlockPool, NULL_BLOCK } from "./block-pool.js";
export { KVCacheManager, type KvCacheManagerOptions, type KvCacheStats, type KvRequest, type RequestId } from "./kv-cache-manager.js";
export { type KvCacheDtype, type KvPoolSizing, kvBytesPerToken, kvPoolBlocks } from "./sizing.js";
