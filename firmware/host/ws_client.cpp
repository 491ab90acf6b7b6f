#include "ws_client.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "base64.h"

namespace toyhost {
namespace {
constexpr size_t kReadChunkBytes = 16 * 1024;
constexpr size_t kKeyBytes = 16;
constexpr int kSendTimeoutS = 5;  // a stuck peer must not hang the wrapper forever

int64_t mono_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

int remaining_ms(int64_t deadline) {
  const int64_t left = deadline - mono_ms();
  return left > 0 ? static_cast<int>(left) : 0;
}

// Non-blocking connect bounded by the deadline; returns the connected fd or -1.
int connect_tcp(const char* host, uint16_t port, int64_t deadline, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port_text = std::to_string(port);
  const int rc = getaddrinfo(host, port_text.c_str(), &hints, &res);
  if (rc != 0) {
    *error = std::string("resolve: ") + gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* ai = res; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) continue;
    const int flags = fcntl(fd, F_GETFL, 0);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    int ok = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (ok != 0 && errno == EINPROGRESS) {
      pollfd pfd{fd, POLLOUT, 0};
      if (poll(&pfd, 1, remaining_ms(deadline)) == 1) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        ok = (err == 0) ? 0 : -1;
        if (err != 0) errno = err;
      } else {
        errno = ETIMEDOUT;
        ok = -1;
      }
    }
    if (ok != 0) {
      *error = std::string("connect: ") + std::strerror(errno);
      ::close(fd);
      fd = -1;
      continue;
    }
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);  // blocking writes, polled reads
  }
  freeaddrinfo(res);
  return fd;
}
}  // namespace

WsClient::WsClient() : mask_rng_(std::random_device{}()) {}

WsClient::~WsClient() { close_socket(); }

void WsClient::close_socket() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

ConnectResult WsClient::connect(const toy::WsUrl& url, const DeviceHeaders& headers, int timeout_ms) {
  ConnectResult result;
  close_socket();
  decoder_ = WsFrameDecoder();
  close_sent_ = false;
  if (url.secure) {
    result.error = "wss:// is not supported by the host wrapper (use ws:// on loopback)";
    return result;
  }
  const int64_t deadline = mono_ms() + timeout_ms;
  fd_ = connect_tcp(url.host, url.port, deadline, &result.error);
  if (fd_ < 0) return result;
  const int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  timeval tv{kSendTimeoutS, 0};
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

  uint8_t key[kKeyBytes];
  std::random_device rd;
  for (uint8_t& b : key) b = static_cast<uint8_t>(rd());
  UpgradeRequest req;
  req.host = url.host;
  req.port = url.port;
  req.path = url.path;
  req.token = headers.token;
  req.mac = headers.mac;
  req.rssi = headers.rssi;
  req.key_base64 = base64_encode(key, sizeof(key));
  const std::string request = build_upgrade_request(req);
  if (!write_all(reinterpret_cast<const uint8_t*>(request.data()), request.size())) {
    result.error = "write failed during handshake";
    close_socket();
    return result;
  }

  std::string response;
  for (;;) {
    const UpgradeResponse parsed = parse_upgrade_response(response.data(), response.size(), req.key_base64);
    if (parsed.complete) {
      result.http_status = parsed.status;
      if (!parsed.ok) {
        result.error = parsed.error;
        close_socket();
        return result;
      }
      // Bytes after the headers already belong to the first frames.
      decoder_.feed(reinterpret_cast<const uint8_t*>(response.data()) + parsed.header_bytes,
                    response.size() - parsed.header_bytes);
      result.ok = true;
      return result;
    }
    if (response.size() >= kMaxUpgradeResponseBytes) {
      result.error = "upgrade response headers too large";
      break;
    }
    pollfd pfd{fd_, POLLIN, 0};
    if (poll(&pfd, 1, remaining_ms(deadline)) != 1) {
      result.error = "timeout waiting for the upgrade response";
      break;
    }
    char buf[1024];
    const size_t want = std::min(sizeof(buf), kMaxUpgradeResponseBytes - response.size());
    const ssize_t n = ::recv(fd_, buf, want, 0);
    if (n <= 0) {
      result.error = "connection closed during handshake";
      break;
    }
    response.append(buf, static_cast<size_t>(n));
  }
  close_socket();
  return result;
}

bool WsClient::write_all(const uint8_t* data, size_t len) {
  while (len > 0) {
    const ssize_t n = ::send(fd_, data, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

bool WsClient::send_frame(WsOpcode opcode, const uint8_t* data, size_t len) {
  if (fd_ < 0 || close_sent_) return false;
  uint8_t mask[kWsMaskBytes];
  const auto m = static_cast<uint32_t>(mask_rng_());
  std::memcpy(mask, &m, sizeof(mask));
  const std::vector<uint8_t> frame = encode_client_frame(opcode, data, len, mask);
  return write_all(frame.data(), frame.size());
}

bool WsClient::send_pong(const std::vector<uint8_t>& payload) {
  return send_frame(WsOpcode::kPong, payload.data(), payload.size());
}

bool WsClient::send_close(uint16_t code) {
  if (fd_ < 0 || close_sent_) return false;
  const uint8_t payload[2] = {static_cast<uint8_t>(code >> 8), static_cast<uint8_t>(code)};
  const bool ok = send_frame(WsOpcode::kClose, payload, sizeof(payload));
  close_sent_ = true;
  return ok;
}

ReadStatus WsClient::read_available() {
  if (fd_ < 0) return ReadStatus::kClosed;
  uint8_t buf[kReadChunkBytes];
  const ssize_t n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
  if (n > 0) {
    decoder_.feed(buf, static_cast<size_t>(n));
    return ReadStatus::kOk;
  }
  if (n == 0) return ReadStatus::kClosed;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return ReadStatus::kWouldBlock;
  return ReadStatus::kError;
}

}  // namespace toyhost
