// Tests for the one atomic file writer: complete or absent, never half-written, no temporaries
// left behind, existing files untouched on failure.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "test_support.hpp"
#include "util/atomic_file.hpp"

namespace {

namespace fs = std::filesystem;
using ml::testing::slurp;
using ml::testing::TempDir;
using ml::testing::write_file;

int entries(const fs::path& dir) {
  int n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

TEST(AtomicFile, WritesTheWholeContentAndLeavesNoTemporary) {
  TempDir dir;
  const std::string path = dir.file("sub/folder/out.txt");  // missing folders are created
  std::string big(3 << 20, 'x');                            // larger than the stream buffer
  big[12345] = 'y';
  ml::write_file_atomically(path, [&](std::ostream& out) { out << "head\n" << big << 42; });
  EXPECT_EQ(slurp(path), "head\n" + big + "42");
  EXPECT_EQ(entries(dir.path() / "sub" / "folder"), 1);
}

TEST(AtomicFile, AnExceptionFromTheWriterKeepsTheOldFileAndRemovesTheTemporary) {
  TempDir dir;
  const std::string path = dir.file("report.json");
  write_file(path, "old content");
  EXPECT_THROW(ml::write_file_atomically(path,
                                         [](std::ostream& out) {
                                           out << std::string(1 << 20, 'n');
                                           throw std::runtime_error("writer failed");
                                         }),
               std::runtime_error);
  EXPECT_EQ(slurp(path), "old content");
  EXPECT_EQ(entries(dir.path()), 1);
}

TEST(AtomicFile, NothingIsVisibleUntilPublished) {
  TempDir dir;
  const std::string a = dir.file("a.csv"), b = dir.file("b.csv");
  {
    ml::AtomicFile fa(a), fb(b);
    fa.write("1\n");
    fb.stream() << "2\n";
    fa.finish();
    fb.finish();
    EXPECT_FALSE(fs::exists(a));
    EXPECT_FALSE(fs::exists(b));
    EXPECT_TRUE(fs::exists(fa.temp_path()));
    fa.publish();
    fb.publish();
  }
  EXPECT_EQ(slurp(a), "1\n");
  EXPECT_EQ(slurp(b), "2\n");
  EXPECT_EQ(entries(dir.path()), 2);
  {
    ml::AtomicFile abandoned(dir.file("c.csv"));
    abandoned.write("never published");
  }
  EXPECT_EQ(entries(dir.path()), 2);
}

TEST(AtomicFile, AnUnwritableTargetIsAFileWriteErrorNamingThePath) {
  TempDir dir;
  write_file(dir.file("plain"), "a file, not a folder");
  const std::string path = dir.file("plain/out.txt");
  try {
    ml::write_file_atomically(path, [](std::ostream& out) { out << "x"; });
    FAIL() << "expected FileWriteError";
  } catch (const ml::FileWriteError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot write '" + path + "'"), std::string::npos)
        << e.what();
    EXPECT_FALSE(e.reason().empty());
    EXPECT_EQ(e.code(), ml::ExitCode::kIo);
  }
}

// check_writable fails before long work where the write would fail after it, and leaves
// nothing behind either way.
TEST(AtomicFile, CheckWritableRefusesFoldersAndFilesAsFoldersAndLeavesNothing) {
  TempDir dir;
  write_file(dir.file("plain"), "a file, not a folder");
  fs::create_directories(dir.file("folder"));
  for (const std::string& bad :
       {dir.file("folder"), dir.file("folder") + "/", dir.file("new") + "/",
        dir.file("plain/out.txt"), dir.file("plain/deeper/out.txt")}) {
    try {
      ml::check_writable(bad);
      ADD_FAILURE() << "no FileWriteError for " << bad;
    } catch (const ml::FileWriteError& e) {
      EXPECT_NE(std::string(e.what()).find("cannot write '" + bad + "'"), std::string::npos)
          << e.what();
    }
  }
  EXPECT_THROW(ml::check_writable(""), ml::FileWriteError);
  // A file that can be written, in folders that do not exist yet: checked by creating them and
  // a temporary, all removed again.
  ml::check_writable(dir.file("a/b/c/out.json"));
  ml::check_writable(dir.file("out.json"));
  EXPECT_FALSE(fs::exists(dir.file("a")));
  EXPECT_EQ(entries(dir.path()), 2);  // plain and folder
  EXPECT_EQ(entries(dir.file("folder")), 0);
}

TEST(AtomicFile, WritingAfterFinishIsAnError) {
  TempDir dir;
  ml::AtomicFile file(dir.file("x"));
  file.stream() << "ok";
  file.finish();
  EXPECT_THROW(file.write("after finish"), ml::FileWriteError);
  file.publish();
  EXPECT_EQ(slurp(dir.file("x")), "ok");
}

TEST(AtomicFile, ASymlinkIsKeptAndTheFileItPointsToReplaced) {
  TempDir dir;
  write_file(dir.file("real.csv"), "old");
  fs::create_symlink("real.csv", dir.path() / "link.csv");
  ml::write_file_atomically(dir.file("link.csv"), [](std::ostream& out) { out << "new"; });
  EXPECT_TRUE(fs::is_symlink(fs::symlink_status(dir.path() / "link.csv")));
  EXPECT_EQ(slurp(dir.file("real.csv")), "new");
  EXPECT_EQ(entries(dir.path()), 2);
}

TEST(AtomicFile, AFifoIsWrittenInPlaceNotReplaced) {
  TempDir dir;
  const std::string fifo = dir.file("pipe");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string received;
  std::thread reader([&] {
    std::ifstream in(fifo, std::ios::binary);
    received.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  });
  ml::write_file_atomically(fifo, [](std::ostream& out) { out << "through the pipe"; });
  reader.join();
  EXPECT_EQ(received, "through the pipe");
  EXPECT_TRUE(fs::is_fifo(fifo));
  EXPECT_EQ(entries(dir.path()), 1);
}

TEST(AtomicFile, ADeviceNodeIsWrittenInPlaceNotReplaced) {
  TempDir dir;
  const std::string device = dir.file("null");
  // A private copy of /dev/null (char 1:3), so a regression replaces this node, not the real one.
  if (::mknod(device.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0)
    GTEST_SKIP() << "cannot create a device node here (needs CAP_MKNOD)";
  ml::write_file_atomically(device, [](std::ostream& out) { out << "discarded"; });
  EXPECT_TRUE(fs::is_character_file(device));
  EXPECT_EQ(entries(dir.path()), 1);
}

}  // namespace
