// Helpers shared by the fuzz harnesses (tests/fuzz/fuzz_*.cpp): the entry points under test
// read files by path, so each input is put into an in-memory file first; and a failed property
// must end the run the same way under libFuzzer and under the replay test.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace ml::fuzz {

// One memfd per process, rewritten for every input: no file is left behind when the fuzzer
// stops on a crash, nothing touches the disk, and every run of the harness sees a regular,
// seekable file at path() (open() on /proc/self/fd/N opens the memfd afresh).
class ScratchFile {
 public:
  static ScratchFile& instance() {
    static ScratchFile file;
    return file;
  }
  // Replaces the file's content by `bytes`; returns its path.
  const std::string& write(std::string_view bytes) {
    if (::ftruncate(fd_, 0) != 0) fail("ftruncate of the scratch file failed");
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n =
          ::pwrite(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
      if (n <= 0) fail("writing the scratch file failed");
      done += static_cast<std::size_t>(n);
    }
    return path_;
  }
  const std::string& path() const { return path_; }

 private:
  ScratchFile() {
    fd_ = ::memfd_create("metalearn-fuzz", MFD_CLOEXEC);
    if (fd_ < 0) fail("memfd_create failed");
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  [[noreturn]] static void fail(const char* what) {
    std::perror(what);
    std::abort();
  }
  int fd_ = -1;
  std::string path_;
};

// A property of the code under test that does not hold: abort, which libFuzzer reports as a
// crash (saving the input) and which fails the replay test.
[[noreturn]] inline void property_failed(const std::string& what) {
  std::fprintf(stderr, "fuzz property failed: %s\n", what.c_str());
  std::abort();
}

// Takes control bytes off the front of an input; 0 once the input is used up.
class Bytes {
 public:
  Bytes(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint8_t take() {
    if (size_ == 0) return 0;
    --size_;
    return *data_++;
  }
  std::string_view rest() const { return {reinterpret_cast<const char*>(data_), size_}; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
};

}  // namespace ml::fuzz
