// Atomic file writes: see atomic_file.hpp.
#include "util/atomic_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <streambuf>
#include <vector>

namespace ml {

namespace fs = std::filesystem;

// Buffers stream output and hands it to AtomicFile::write in large blocks; a write error
// propagates as FileWriteError out of the stream operation (the stream is told to rethrow).
class AtomicFile::StreamBuffer : public std::streambuf {
 public:
  explicit StreamBuffer(AtomicFile& file) : file_(file), buffer_(std::size_t{1} << 16) {
    setp(buffer_.data(), buffer_.data() + buffer_.size());
  }
  void drain() {
    const std::ptrdiff_t n = pptr() - pbase();
    if (n > 0) file_.write(std::string_view(pbase(), static_cast<std::size_t>(n)));
    setp(buffer_.data(), buffer_.data() + buffer_.size());
  }

 protected:
  int_type overflow(int_type c) override {
    drain();
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }
  int sync() override {
    drain();
    return 0;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    if (n >= static_cast<std::streamsize>(buffer_.size())) {
      drain();
      file_.write(std::string_view(s, static_cast<std::size_t>(n)));
      return n;
    }
    return std::streambuf::xsputn(s, n);
  }

 private:
  AtomicFile& file_;
  std::vector<char> buffer_;
};

namespace {

// Makes the rename itself durable; best effort, since some file systems refuse to sync folders.
void sync_directory(const fs::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

constexpr std::string_view kTempInfix = ".tmp-";

// The writer's PID of a temporary name "NAME.tmp-PID", or -1 when `name` is not one.
pid_t temporary_pid(const std::string& name) {
  const std::size_t at = name.rfind(kTempInfix);
  if (at == std::string::npos || at == 0) return -1;
  const std::string digits = name.substr(at + kTempInfix.size());
  if (digits.empty() || digits.size() > 9 ||
      digits.find_first_not_of("0123456789") != std::string::npos)
    return -1;
  return static_cast<pid_t>(std::stol(digits));
}

bool process_runs(pid_t pid) {
  // EPERM: it runs, under another user.
  return pid == ::getpid() || ::kill(pid, 0) == 0 || errno == EPERM;
}

}  // namespace

int remove_stale_temporaries(const std::string& path) {
  std::error_code ec;
  const fs::path given(path);
  const bool whole_folder = fs::is_directory(given, ec);
  const fs::path dir = whole_folder ? given : given.parent_path();
  const std::string prefix =
      whole_folder ? std::string() : given.filename().string() + std::string(kTempInfix);
  int removed = 0;
  for (fs::directory_iterator it(dir.empty() ? fs::path(".") : dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const pid_t pid = temporary_pid(name);
    if (pid <= 0 || (!whole_folder && name.size() != prefix.size() + std::to_string(pid).size()))
      continue;
    std::error_code file_ec;
    if (!process_runs(pid) && it->is_regular_file(file_ec) && fs::remove(it->path(), file_ec))
      ++removed;
  }
  return removed;
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  std::error_code ec;
  const fs::file_status target = fs::status(path_, ec);  // follows symlinks
  if (fs::exists(target) && !fs::is_regular_file(target) && !fs::is_directory(target)) {
    // A device, FIFO or socket (/dev/stdout, /dev/null, a named pipe) is written in place:
    // renaming a regular file over it would destroy it (as root, even /dev/null).
    direct_ = true;
    temp_path_ = path_;
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd_ < 0) fail("cannot open '" + path_ + "'", errno);
    return;
  }
  // Through a symlink, the file it points to is replaced and the link kept.
  if (fs::is_symlink(fs::symlink_status(path_, ec))) {
    const fs::path resolved = fs::weakly_canonical(path_, ec);
    if (!ec) write_path_ = resolved.string();
  }
  if (write_path_.empty()) write_path_ = path_;
  remove_stale_temporaries(write_path_);
  temp_path_ = write_path_ + std::string(kTempInfix) + std::to_string(::getpid());
  const fs::path parent = fs::path(write_path_).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (ec)
      throw FileWriteError(path_,
                           "cannot create folder '" + parent.string() + "': " + ec.message());
  }
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot create '" + temp_path_ + "'", errno);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!published_ && !direct_) ::unlink(temp_path_.c_str());
}

void AtomicFile::fail(const std::string& doing, int error) const {
  throw FileWriteError(path_, doing + ": " + (error != 0 ? std::strerror(error) : "I/O error"));
}

void AtomicFile::write(std::string_view bytes) {
  if (fd_ < 0) fail("writing after the file was finished", 0);
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("writing '" + temp_path_ + "' failed", errno);
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::ostream& AtomicFile::stream() {
  if (!stream_) {
    buffer_ = std::make_unique<StreamBuffer>(*this);
    stream_ = std::make_unique<std::ostream>(buffer_.get());
    stream_->exceptions(std::ios::badbit);
  }
  return *stream_;
}

void AtomicFile::finish() {
  if (finished_) return;
  if (buffer_) buffer_->drain();
  // Devices and pipes cannot be synced (EINVAL); what matters there is that write() succeeded.
  const bool synced = direct_ || ::fsync(fd_) == 0;
  const int sync_error = errno;
  // close() can report a delayed write error (e.g. on NFS) that fsync did not.
  const bool closed = ::close(fd_) == 0;
  const int close_error = errno;
  fd_ = -1;
  if (!synced) fail("flushing '" + temp_path_ + "' failed", sync_error);
  if (!closed) fail("closing '" + temp_path_ + "' failed", close_error);
  finished_ = true;
}

void AtomicFile::publish() {
  finish();
  if (published_) return;
  published_ = true;
  if (direct_) return;
  if (::rename(temp_path_.c_str(), write_path_.c_str()) != 0) {
    published_ = false;
    fail("renaming '" + temp_path_ + "' into place failed", errno);
  }
  sync_directory(fs::path(write_path_).parent_path());
}

NewFolders::NewFolders(const fs::path& folder) {
  std::error_code ec;
  const fs::path absolute = fs::absolute(folder, ec);
  for (fs::path p = absolute; !fs::exists(p, ec) && p != p.root_path(); p = p.parent_path())
    folders_.push_back(p);
}

NewFolders::~NewFolders() {
  std::error_code ignored;
  for (const fs::path& folder : folders_) fs::remove(folder, ignored);
}

void check_writable(const std::string& path) {
  std::error_code ec;
  if (path.empty()) throw FileWriteError(path, "no file name given");
  if (path.back() == '/' || fs::is_directory(path, ec))
    throw FileWriteError(path, "it is a folder; give a file name");
  const fs::path parent = fs::absolute(path, ec).parent_path();
  // The folders the write would create: the probe's go again, whether or not it succeeds.
  const NewFolders missing(parent);
  const fs::path existing =
      missing.folders().empty() ? parent : missing.folders().back().parent_path();
  if (!fs::is_directory(existing, ec))
    throw FileWriteError(path, "'" + existing.string() + "' is not a folder");
  AtomicFile probe(path);  // creates the folders and a temporary, which it removes
}

void write_file_atomically(const std::string& path,
                           const std::function<void(std::ostream&)>& write) {
  AtomicFile file(path);
  write(file.stream());
  file.commit();
}

}  // namespace ml
