// Writing a file so that it is either complete or absent: the content goes to PATH.tmp-PID in
// the same folder (so the rename cannot cross file systems) and is renamed over PATH only once
// fully written and flushed to disk, so a failure or a crash never leaves a half-written file
// (or destroys an existing one) under the final name. The one writer behind checkpoints,
// reports, predictions, caches, run configs and synthetic logs.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "util/errors.hpp"

namespace ml {

// A failed atomic write: an IoError ("cannot write 'PATH': REASON") that also carries the
// reason alone, so that callers with their own wording (checkpoints) can rephrase it.
struct FileWriteError : IoError {
  FileWriteError(const std::string& path, const std::string& reason)
      : IoError("cannot write '" + path + "': " + reason), reason_(reason) {}
  const std::string& reason() const { return reason_; }

 private:
  std::string reason_;
};

// The temporary file of one atomic write. Bytes go in with write() or stream(); finish() makes
// them durable (flush, fsync, close); publish() renames the temporary over the final path and
// syncs the folder. They are separate so that several outputs can all be finished before any
// becomes visible (synth). The destructor removes the temporary unless it was published.
// Every failure throws FileWriteError naming the final path, with errno's text.
// Two kinds of target are not replaced: a symlink keeps pointing where it did (the file it
// points to is replaced), and a device, FIFO or socket (/dev/stdout, a named pipe) is written
// in place, without a temporary, since renaming over it would destroy it.
// A process killed mid-write (kill -9, a second Ctrl-C, a crash) leaves its PATH.tmp-PID
// behind; the next AtomicFile for PATH removes those whose process no longer runs.
class AtomicFile {
 public:
  // Creates missing parent folders and the temporary PATH.tmp-PID, after removing the
  // temporaries of PATH left by dead processes (remove_stale_temporaries).
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::string_view bytes);
  // A stream onto write(); errors surface as FileWriteError from write(), finish() or here.
  std::ostream& stream();
  void finish();
  void publish();
  void commit() {
    finish();
    publish();
  }

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  class StreamBuffer;

  [[noreturn]] void fail(const std::string& doing, int error) const;

  std::string path_;
  std::string write_path_;  // path_, or the file a symlink at path_ points to
  std::string temp_path_;   // path_ itself when direct_
  int fd_ = -1;
  bool direct_ = false;  // a device, FIFO or socket: written in place
  bool finished_ = false;
  bool published_ = false;
  std::unique_ptr<StreamBuffer> buffer_;
  std::unique_ptr<std::ostream> stream_;
};

// The folders of a path that do not exist yet, for a command that creates them and must take
// them away again when it fails or is interrupted (nothing half-made left behind).
class NewFolders {
 public:
  // Remembers which of `folder` and its parents are missing; creates nothing.
  explicit NewFolders(const std::filesystem::path& folder);
  // Removes them, innermost first, each only when empty, unless keep() was called.
  ~NewFolders();
  NewFolders(const NewFolders&) = delete;
  NewFolders& operator=(const NewFolders&) = delete;
  void keep() { folders_.clear(); }
  // Innermost first.
  const std::vector<std::filesystem::path>& folders() const { return folders_; }

 private:
  std::vector<std::filesystem::path> folders_;
};

// Fails now, with the FileWriteError the write would throw later, where `path` cannot be
// written because of where it is: a folder's name (or a name ending in '/'), a parent that is a
// file or cannot be created, a folder no file can be created in. It tries: creates the missing
// folders and a temporary, then removes both, so nothing is left behind. For commands that
// write at the end of long work.
void check_writable(const std::string& path);

// Removes the temporaries PATH.tmp-PID of `path` (every file's of folder `path`, when it is a
// folder) whose process PID no longer runs; returns how many. Best effort: a file that cannot
// be removed is left alone. A live PID (the writer itself, or an unrelated process that reused
// a dead writer's PID) keeps its file. PIDs are this machine's: two machines writing the same
// file of a shared folder at once already race for it.
int remove_stale_temporaries(const std::string& path);

// Writes PATH atomically with whatever `write` puts into the stream. Throws FileWriteError;
// an exception thrown by `write` propagates unchanged. Either way the temporary is removed.
void write_file_atomically(const std::string& path,
                           const std::function<void(std::ostream&)>& write);

}  // namespace ml
