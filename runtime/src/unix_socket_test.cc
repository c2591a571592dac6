#include "mpath/runtime/unix_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mpath {
namespace {

using ::testing::HasSubstr;

class UnixListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/mpath-sock-test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Connects a client; true when something accepts at `path`.
  static bool Connects(const std::string& path) {
    UniqueFd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const sockaddr_un address = UnixSocketAddress(path).value();
    return ::connect(client.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
  }

  std::string dir_;
};

TEST_F(UnixListenerTest, ListensWithItsModeAndLeavesNoTemporaryFile) {
  const std::string path = dir_ + "/a.sock";
  auto listener = UnixListener::Listen(path, 0600);
  ASSERT_TRUE(listener) << listener.error().message();
  struct stat st{};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(Connects(path));
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir_)) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST_F(UnixListenerTest, RefusesARegularFileAndALiveSocketButReplacesAStaleOne) {
  const std::string regular = dir_ + "/file";
  std::ofstream(regular) << "keep me";
  auto refused = UnixListener::Listen(regular);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message(), regular + " exists and is not a socket; not replacing it");
  EXPECT_TRUE(std::filesystem::is_regular_file(regular));

  const std::string path = dir_ + "/b.sock";
  auto live = UnixListener::Listen(path);
  ASSERT_TRUE(live);
  auto second = UnixListener::Listen(path);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().message(), "a server already answers on " + path);

  live->Close();  // the file stays behind, as after a crash
  ASSERT_TRUE(std::filesystem::exists(path));
  auto replacement = UnixListener::Listen(path);
  ASSERT_TRUE(replacement) << replacement.error().message();
  EXPECT_TRUE(Connects(path));
}

TEST_F(UnixListenerTest, RemovesOnlyTheFileItMade) {
  const std::string path = dir_ + "/c.sock";
  auto first = UnixListener::Listen(path);
  ASSERT_TRUE(first);
  first->Close();
  auto successor = UnixListener::Listen(path);
  ASSERT_TRUE(successor);
  first->RemoveFile();  // the file is the successor's now
  EXPECT_TRUE(Connects(path));
  successor->RemoveFile();
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(UnixListenerTest, BadPathsFailNamingThePath) {
  const std::string too_long = dir_ + "/" + std::string(120, 'x');
  auto listener = UnixListener::Listen(too_long);
  ASSERT_FALSE(listener);
  EXPECT_THAT(listener.error().message(), HasSubstr("is longer than 107 bytes"));
  auto empty = UnixSocketAddress("");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().message(), "the unix socket path is empty");
  auto missing_dir = UnixListener::Listen(dir_ + "/missing/d.sock");
  ASSERT_FALSE(missing_dir);
  EXPECT_THAT(missing_dir.error().message(), HasSubstr("cannot bind " + dir_ + "/missing/d.sock"));
}

}  // namespace
}  // namespace mpath
