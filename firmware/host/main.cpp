// toy-host: runs the firmware's device core against a real /ws/esp32
// server over plain ws://, with a file as microphone and libopus as
// speaker. See firmware/README.md ("Host wrapper").
#include <iostream>
#include <string>
#include <vector>

#include "cli_options.h"
#include "host_runner.h"
#include "summary.h"

int main(int argc, char** argv) {
  constexpr int kUsageExit = 2;
  std::vector<std::string> args(argv + 1, argv + argc);
  toyhost::Options options;
  std::string error;
  if (!toyhost::parse_options(args, &options, &error)) {
    std::cerr << "toy-host: " << error << "\n" << toyhost::usage_text();
    return kUsageExit;
  }
  if (options.help) {
    std::cout << toyhost::usage_text();
    return 0;
  }
  toyhost::HostRunner runner(options);
  toyhost::RunResult result;
  const int status = runner.run(&result);
  std::cout << toyhost::summary_json(result) << std::endl;
  return status;
}
