// A binary columnar cache of the parsed purchase log, so that the next command on unchanged
// files skips the CSV parse: the log's columns, dictionaries and side-table attributes and the
// load report, as load_purchase_log returns them. The cache is keyed by every data file's
// path, size, mtime, ctime and inode and by a hash of the config that shapes the parse (the
// data section and task.label.class_column / class_from), and it carries a format magic, version
// and a checksum. A stale, truncated, corrupt or old-format cache is never trusted: it is parsed
// again and rewritten (atomically); any problem with the cache only logs a warning.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "data/purchase_log.hpp"

namespace ml::data {

// What the cache was built from: when any of it differs, the cache is stale.
struct LogCacheKey {
  struct File {
    std::string path;  // absolute
    std::uint64_t size = 0, inode = 0;
    std::int64_t mtime_ns = 0, ctime_ns = 0;
    bool operator==(const File& o) const {
      return path == o.path && size == o.size && inode == o.inode && mtime_ns == o.mtime_ns &&
             ctime_ns == o.ctime_ns;
    }
  };
  std::uint64_t config_hash = 0;
  std::vector<File> files;  // data.files, then each side table's files
  bool operator==(const LogCacheKey& o) const {
    return config_hash == o.config_hash && files == o.files;
  }
};

// The key for the files as they are now. Throws DataError when a data file is missing.
LogCacheKey log_cache_key(const config::Config& config);

// The cache files that data.cache allows for this config, most preferred first: for "auto",
// beside the first data file, then inside run.dir; none for "off".
std::vector<std::string> log_cache_paths(const config::Config& config);

// Writes the cache atomically; throws IoError (FileWriteError) when it cannot.
void write_log_cache(const std::string& path, const LogCacheKey& key, const PurchaseLog& log,
                     const LoadReport& report);

enum class CacheRead { kHit, kMissing, kStale, kInvalid };
// Reads a cache written for `key`. On anything but kHit, `log` and `report` are left empty and
// `problem` says what was wrong (for kStale and kInvalid).
CacheRead read_log_cache(const std::string& path, const LogCacheKey& key, PurchaseLog& log,
                         LoadReport& report, std::string& problem);

// What load_purchase_log_cached did, for tests and logs.
struct CacheOutcome {
  bool hit = false;  // the log came from `path`
  std::string path;  // the cache read or written; "" when off or nothing could be written
};

// load_purchase_log through the cache that data.cache names.
PurchaseLog load_purchase_log_cached(const config::Config& config, LoadReport& report,
                                     CacheOutcome* outcome = nullptr);

}  // namespace ml::data
