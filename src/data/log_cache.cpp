// The parsed-log cache: see log_cache.hpp.
//
// File layout (little-endian, native widths): the magic, the format version, the key (config
// hash, then each file's path, size, inode, mtime and ctime), the payload (the log's columns
// and dictionaries, then the report), and last a checksum of everything before it. The key
// comes first so that a stale cache is recognised without reading its payload; the checksum
// comes last so that it can be computed while writing in one pass.
#include "data/log_cache.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <ostream>
#include <type_traits>

#include "util/atomic_file.hpp"
#include "util/checksum.hpp"
#include "util/errors.hpp"
#include "util/rng.hpp"
#include "util/strings.hpp"

namespace ml::data {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'M', 'L', 'L', 'O', 'G', 'C', 'A', 'C'};
// Bump whenever the layout, the parse, the checksum or what the payload holds changes (2: the
// checksum became XXH3-64; 3: the reader ends lines at a bare CR, detects '|', drops a trailing
// delimiter the header lacks and escapes cells that are not UTF-8, and the report counts those
// cells; 4: timestamp units, the duplicate-key policy, refused non-finite numbers and
// implausible times; 5: a backslash in a data cell is doubled). Another version is rebuilt,
// never read.
constexpr std::uint32_t kFormatVersion = 5;
constexpr char kFolderName[] = ".metalearn-cache";

// FNV-1a: stable across builds, for the small config text that goes into the key.
std::uint64_t fnv1a(const std::string& s) {
  return ml::hash_bytes(s.data(), s.size());
}

// Writes the payload through a checksum; Reader feeds the checksum the same bytes.
class Writer {
 public:
  explicit Writer(std::ostream& out) : out_(out) {}
  void put(const void* data, std::size_t n) {
    sum_.update(data, n);
    out_.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
  }
  template <typename T>
  void pod(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    put(&v, sizeof v);
  }
  void str(const std::string& s) {
    pod<std::uint64_t>(s.size());
    put(s.data(), s.size());
  }
  template <typename T>
  void vec(const std::vector<T>& v) {
    pod<std::uint64_t>(v.size());
    put(v.data(), v.size() * sizeof(T));
  }
  void strings(const std::vector<std::string>& v) {
    std::vector<std::uint64_t> lengths;
    lengths.reserve(v.size());
    std::string blob;
    for (const auto& s : v) {
      lengths.push_back(s.size());
      blob += s;
    }
    vec(lengths);
    str(blob);
  }
  void finish() {
    const std::uint64_t sum = sum_.value();
    out_.write(reinterpret_cast<const char*>(&sum), sizeof sum);
  }

 private:
  std::ostream& out_;
  Checksum64 sum_;
};

// Thrown inside reading only: the cache is unusable (caught in read_log_cache).
struct Invalid {
  std::string why;
};

class Reader {
 public:
  Reader(int fd, std::uint64_t size) : fd_(fd), left_(size) {}
  void get(void* data, std::size_t n) {
    if (n > left_) throw Invalid{"truncated"};
    auto* p = static_cast<char*>(data);
    for (std::size_t done = 0; done < n;) {
      const ssize_t r = ::read(fd_, p + done, n - done);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) throw Invalid{"truncated"};
      done += static_cast<std::size_t>(r);
    }
    left_ -= n;
    sum_.update(data, n);
  }
  template <typename T>
  T pod() {
    T v;
    get(&v, sizeof v);
    return v;
  }
  // A count of `unit`-byte items that the rest of the file can hold.
  std::size_t count(std::size_t unit) {
    const auto n = pod<std::uint64_t>();
    if (unit > 0 && n > left_ / unit) throw Invalid{"corrupt (a size beyond the end of file)"};
    return static_cast<std::size_t>(n);
  }
  std::string str() {
    std::string s(count(1), '\0');
    get(s.data(), s.size());
    return s;
  }
  template <typename T>
  void vec(std::vector<T>& v) {
    v.resize(count(sizeof(T)));
    get(v.data(), v.size() * sizeof(T));
  }
  std::vector<std::string> strings() {
    std::vector<std::uint64_t> lengths;
    vec(lengths);
    const std::string blob = str();
    std::vector<std::string> out;
    out.reserve(lengths.size());
    std::size_t at = 0;
    for (const auto n : lengths) {
      if (n > blob.size() - at) throw Invalid{"corrupt (a string beyond its block)"};
      out.emplace_back(blob, at, n);
      at += n;
    }
    return out;
  }
  void finish() {
    const std::uint64_t expected = sum_.value();
    std::uint64_t stored = 0;
    if (left_ != sizeof stored) throw Invalid{"corrupt (wrong length)"};
    for (std::size_t done = 0; done < sizeof stored;) {
      const ssize_t r = ::read(fd_, reinterpret_cast<char*>(&stored) + done, sizeof stored - done);
      if (r <= 0) throw Invalid{"truncated"};
      done += static_cast<std::size_t>(r);
    }
    if (stored != expected) throw Invalid{"corrupt (checksum mismatch)"};
  }

 private:
  int fd_;
  std::uint64_t left_;
  Checksum64 sum_;
};

void put_key(Writer& w, const LogCacheKey& key) {
  w.pod(key.config_hash);
  w.pod<std::uint64_t>(key.files.size());
  for (const auto& f : key.files) {
    w.str(f.path);
    w.pod(f.size);
    w.pod(f.inode);
    w.pod(f.mtime_ns);
    w.pod(f.ctime_ns);
  }
}

LogCacheKey get_key(Reader& r) {
  LogCacheKey key;
  key.config_hash = r.pod<std::uint64_t>();
  key.files.resize(r.count(40));
  for (auto& f : key.files) {
    f.path = r.str();
    f.size = r.pod<std::uint64_t>();
    f.inode = r.pod<std::uint64_t>();
    f.mtime_ns = r.pod<std::int64_t>();
    f.ctime_ns = r.pod<std::int64_t>();
  }
  return key;
}

void put_table(Writer& w, const FeatureTable& t) {
  w.pod<std::uint64_t>(t.numeric.size());
  for (const auto& c : t.numeric) {
    w.str(c.name);
    w.vec(c.values);
  }
  w.pod<std::uint64_t>(t.categorical.size());
  for (const auto& c : t.categorical) {
    w.str(c.name);
    w.strings(c.dictionary.names());
    w.vec(c.values);
  }
  w.pod<std::uint64_t>(t.text.size());
  for (const auto& c : t.text) {
    w.str(c.name);
    w.str(c.arena);
    w.vec(c.offsets);
  }
}

void get_dictionary(Reader& r, Dictionary& d) {
  for (const auto& name : r.strings()) {
    if (d.intern(name) != static_cast<std::int32_t>(d.size() - 1))
      throw Invalid{"corrupt (a repeated dictionary entry)"};
  }
}

// Ids must index their dictionary: a corrupt id would otherwise be read out of bounds later.
void check_ids(const std::vector<std::int32_t>& ids, const Dictionary& d) {
  for (const auto id : ids)
    if (id < kNoId || id >= static_cast<std::int32_t>(d.size()))
      throw Invalid{"corrupt (an id outside its dictionary)"};
}

void get_table(Reader& r, FeatureTable& t) {
  t.numeric.resize(r.count(16));
  for (auto& c : t.numeric) {
    c.name = r.str();
    r.vec(c.values);
  }
  t.categorical.resize(r.count(24));
  for (auto& c : t.categorical) {
    c.name = r.str();
    get_dictionary(r, c.dictionary);
    r.vec(c.values);
    check_ids(c.values, c.dictionary);
  }
  t.text.resize(r.count(24));
  for (auto& c : t.text) {
    c.name = r.str();
    c.arena = r.str();
    r.vec(c.offsets);
    if (c.offsets.empty() || c.offsets.front() != 0) throw Invalid{"corrupt (text offsets)"};
    for (std::size_t i = 1; i < c.offsets.size(); ++i)
      if (c.offsets[i] < c.offsets[i - 1] || c.offsets[i] > c.arena.size())
        throw Invalid{"corrupt (text offsets)"};
  }
}

void put_log(Writer& w, const PurchaseLog& log) {
  w.pod<std::uint8_t>(log.has_user_);
  w.pod<std::uint8_t>(log.has_item_);
  w.pod<std::uint8_t>(log.has_timestamp_);
  for (const Dictionary* d : {&log.users, &log.items, &log.tasks, &log.events, &log.classes})
    w.strings(d->names());
  for (const auto* v : {&log.user, &log.item, &log.task, &log.event, &log.label_class}) w.vec(*v);
  w.vec(log.timestamp);
  for (const auto* v : {&log.rating, &log.price, &log.quantity}) w.vec(*v);
  put_table(w, log.features);
  put_table(w, log.user_attributes);
  put_table(w, log.item_attributes);
}

void get_log(Reader& r, PurchaseLog& log) {
  log.has_user_ = r.pod<std::uint8_t>() != 0;
  log.has_item_ = r.pod<std::uint8_t>() != 0;
  log.has_timestamp_ = r.pod<std::uint8_t>() != 0;
  Dictionary* dictionaries[] = {&log.users, &log.items, &log.tasks, &log.events, &log.classes};
  for (Dictionary* d : dictionaries) get_dictionary(r, *d);
  std::vector<std::int32_t>* ids[] = {&log.user, &log.item, &log.task, &log.event,
                                      &log.label_class};
  for (int k = 0; k < 5; ++k) {
    r.vec(*ids[k]);
    check_ids(*ids[k], *dictionaries[k]);
    if (ids[k]->size() != log.user.size()) throw Invalid{"corrupt (column lengths differ)"};
  }
  r.vec(log.timestamp);
  for (auto* v : {&log.rating, &log.price, &log.quantity}) r.vec(*v);
  get_table(r, log.features);
  get_table(r, log.user_attributes);
  get_table(r, log.item_attributes);
  const std::size_t rows = log.size();
  bool same = log.timestamp.size() == rows && log.rating.size() == rows &&
              log.price.size() == rows && log.quantity.size() == rows;
  for (const auto& c : log.features.numeric) same = same && c.values.size() == rows;
  for (const auto& c : log.features.categorical) same = same && c.values.size() == rows;
  for (const auto& c : log.features.text) same = same && c.size() == rows;
  for (const auto* t : {&log.user_attributes, &log.item_attributes}) {
    const std::size_t n = t == &log.user_attributes ? log.users.size() : log.items.size();
    for (const auto& c : t->numeric) same = same && c.values.size() == n;
    for (const auto& c : t->categorical) same = same && c.values.size() == n;
    for (const auto& c : t->text) same = same && c.size() == n;
  }
  if (!same) throw Invalid{"corrupt (column lengths differ)"};
}

void put_report(Writer& w, const LoadReport& r) {
  w.strings(r.files);
  for (const auto v : {r.bytes, r.rows_read, r.rows_rejected, r.rows_without_task}) w.pod(v);
  w.pod<std::uint64_t>(r.rejected_by_reason.size());
  for (const auto& [reason, n] : r.rejected_by_reason) {
    w.str(reason);
    w.pod(n);
  }
  w.pod<std::uint64_t>(r.bad_rows.size());
  for (const auto& b : r.bad_rows) {
    w.str(b.file);
    w.pod<std::uint64_t>(b.line);
    w.str(b.reason);
  }
  w.pod<std::uint64_t>(r.side_tables.size());
  for (const auto& s : r.side_tables) {
    w.str(s.join);
    w.strings(s.files);
    w.str(s.duplicates);
    for (const auto v : {s.rows, s.rejected, s.duplicate_keys, s.log_ids_matched, s.log_ids_total})
      w.pod(v);
  }
  w.pod<std::uint64_t>(r.timestamps_read_as.size());
  for (const auto& [reading, n] : r.timestamps_read_as) {
    w.str(reading);
    w.pod(n);
  }
  w.pod(r.non_utf8_cells);
  w.str(r.first_non_utf8.file);
  w.pod<std::uint64_t>(r.first_non_utf8.line);
  w.str(r.first_non_utf8.reason);
}

void get_report(Reader& r, LoadReport& report) {
  report.files = r.strings();
  for (auto* v :
       {&report.bytes, &report.rows_read, &report.rows_rejected, &report.rows_without_task})
    *v = r.pod<std::int64_t>();
  for (std::size_t n = r.count(16); n > 0; --n) {
    std::string reason = r.str();
    report.rejected_by_reason[reason] = r.pod<std::int64_t>();
  }
  report.bad_rows.resize(r.count(24));
  for (auto& b : report.bad_rows) {
    b.file = r.str();
    b.line = static_cast<std::size_t>(r.pod<std::uint64_t>());
    b.reason = r.str();
  }
  report.side_tables.resize(r.count(64));
  for (auto& s : report.side_tables) {
    s.join = r.str();
    s.files = r.strings();
    s.duplicates = r.str();
    for (auto* v : {&s.rows, &s.rejected, &s.duplicate_keys, &s.log_ids_matched, &s.log_ids_total})
      *v = r.pod<std::int64_t>();
  }
  for (std::size_t n = r.count(16); n > 0; --n) {
    std::string reading = r.str();
    report.timestamps_read_as[reading] = r.pod<std::int64_t>();
  }
  report.non_utf8_cells = r.pod<std::int64_t>();
  report.first_non_utf8.file = r.str();
  report.first_non_utf8.line = static_cast<std::size_t>(r.pod<std::uint64_t>());
  report.first_non_utf8.reason = r.str();
}

std::int64_t nanoseconds(const struct timespec& t) {
  return static_cast<std::int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

LogCacheKey::File file_key(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw DataError("cannot open data file '" + path + "': " + std::strerror(errno));
  LogCacheKey::File f;
  std::error_code ec;
  fs::path absolute = fs::absolute(path, ec);
  f.path = ec ? path : absolute.lexically_normal().string();
  f.size = static_cast<std::uint64_t>(st.st_size);
  f.inode = static_cast<std::uint64_t>(st.st_ino);
  f.mtime_ns = nanoseconds(st.st_mtim);
  f.ctime_ns = nanoseconds(st.st_ctim);
  return f;
}

std::string hex(std::uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) s[static_cast<std::size_t>(i)] = kDigits[v & 15];
  return s;
}

// Everything in the data section shapes the parse (columns, formats, policies, side tables)
// except where the cache lives; the class column (and where it is read from) is the one parsed
// column configured outside it.
std::uint64_t parse_shape_hash(const config::Config& config) {
  config::Json j;
  to_json(j, config);
  config::Json shape = j["data"];
  shape.erase("cache");
  shape["class_column"] = j["task"]["label"]["class_column"];
  shape["class_from"] = j["task"]["label"]["class_from"];
  return fnv1a(shape.dump());
}

// Writes the cache at the first of `paths` that can be written; "" when none could (logged:
// the command goes on without a cache).
std::string write_first_possible(const std::vector<std::string>& paths, const LogCacheKey& key,
                                 const PurchaseLog& log, const LoadReport& report) {
  std::vector<std::string> problems;
  for (const auto& path : paths) {
    try {
      const fs::path folder = fs::path(path).parent_path();
      std::error_code ec;
      if (!folder.empty()) fs::create_directories(folder, ec);
      if (ec) throw DataError("cannot create '" + folder.string() + "': " + ec.message());
      write_log_cache(path, key, log, report);
      return path;
    } catch (const Error& e) {
      problems.push_back(e.what());
    }
  }
  spdlog::warn(
      "cannot write the parsed-log cache ({}); the next command parses the CSV files "
      "again (set data.cache to a writable folder, or \"off\")",
      join(problems, "; "));
  return "";
}

}  // namespace

LogCacheKey log_cache_key(const config::Config& config) {
  LogCacheKey key;
  key.config_hash = parse_shape_hash(config);
  for (const auto& f : config.data.files) key.files.push_back(file_key(f));
  for (const auto& t : config.data.side_tables)
    for (const auto& f : t.files) key.files.push_back(file_key(f));
  return key;
}

std::vector<std::string> log_cache_paths(const config::Config& config) {
  const std::string& where = config.data.cache;
  if (where == config::kCacheOff || config.data.files.empty()) return {};
  // One file per data files + config: commands with different column roles on the same log
  // keep their own caches, and a changed file overwrites its stale cache in place.
  std::string identity;
  for (const auto& f : config.data.files) {
    std::error_code ec;
    identity += fs::absolute(f, ec).lexically_normal().string() + '\n';
  }
  const std::string name = fs::path(config.data.files.front()).stem().string() + "-" +
                           hex(fnv1a(identity) ^ parse_shape_hash(config)) + ".mllog";
  if (where != config::kCacheAuto) return {(fs::path(where) / name).string()};
  const fs::path beside = fs::path(config.data.files.front()).parent_path() / kFolderName;
  return {(beside / name).string(), (fs::path(config.run.dir) / kFolderName / name).string()};
}

void write_log_cache(const std::string& path, const LogCacheKey& key, const PurchaseLog& log,
                     const LoadReport& report) {
  write_file_atomically(path, [&](std::ostream& out) {
    Writer w(out);
    w.put(kMagic, sizeof kMagic);
    w.pod(kFormatVersion);
    put_key(w, key);
    put_log(w, log);
    put_report(w, report);
    w.finish();
  });
}

CacheRead read_log_cache(const std::string& path, const LogCacheKey& key, PurchaseLog& log,
                         LoadReport& report, std::string& problem) {
  problem.clear();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return CacheRead::kMissing;
  struct stat st {};
  const bool sized = ::fstat(fd, &st) == 0;
  try {
    Reader r(fd, sized ? static_cast<std::uint64_t>(st.st_size) : 0);
    char magic[sizeof kMagic];
    r.get(magic, sizeof magic);
    if (std::memcmp(magic, kMagic, sizeof kMagic) != 0) throw Invalid{"not a metalearn log cache"};
    const auto version = r.pod<std::uint32_t>();
    if (version != kFormatVersion)
      throw Invalid{"format version " + std::to_string(version) + ", this build reads " +
                    std::to_string(kFormatVersion)};
    if (!(get_key(r) == key)) {
      ::close(fd);
      problem = "the data files or the data config changed";
      return CacheRead::kStale;
    }
    get_log(r, log);
    get_report(r, report);
    r.finish();
    ::close(fd);
    return CacheRead::kHit;
  } catch (const Invalid& e) {
    problem = e.why;
  } catch (const std::bad_alloc&) {
    problem = "corrupt (a size too large to hold)";
  } catch (const std::length_error&) {
    problem = "corrupt (a size too large to hold)";
  }
  ::close(fd);
  log = PurchaseLog();
  report = LoadReport();
  return CacheRead::kInvalid;
}

PurchaseLog load_purchase_log_cached(const config::Config& config, LoadReport& report,
                                     CacheOutcome* outcome) {
  CacheOutcome local;
  CacheOutcome& result = outcome ? *outcome : local;
  result = CacheOutcome();
  const std::vector<std::string> paths = log_cache_paths(config);
  if (paths.empty()) return load_purchase_log(config, report);

  const auto started = std::chrono::steady_clock::now();
  const LogCacheKey key = log_cache_key(config);
  for (const auto& path : paths) {
    PurchaseLog log;
    LoadReport cached;
    std::string problem;
    switch (read_log_cache(path, key, log, cached, problem)) {
      case CacheRead::kHit:
        // scripts/bench_ingest.sh reads this line.
        spdlog::debug(
            "read the parsed log from the cache '{}': {} rows in {:.3f} s", path, log.size(),
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        report = std::move(cached);
        result = {true, path};
        return log;
      case CacheRead::kMissing:
        break;
      case CacheRead::kStale:
        spdlog::debug("the parsed-log cache '{}' is out of date ({}); parsing again", path,
                      problem);
        break;
      case CacheRead::kInvalid:
        spdlog::warn("ignoring the parsed-log cache '{}': {}; parsing again", path, problem);
        break;
    }
  }
  PurchaseLog log = load_purchase_log(config, report);
  result.path = write_first_possible(paths, key, log, report);
  if (!result.path.empty()) spdlog::debug("wrote the parsed-log cache '{}'", result.path);
  return log;
}

}  // namespace ml::data
