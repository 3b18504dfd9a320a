#include "daemon/signals.hpp"

#include <csignal>
#include <initializer_list>

namespace etld {

void ignore_control_signals() {
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  for (int signo : {SIGHUP, SIGUSR1, SIGUSR2}) ::sigaction(signo, &ignore, nullptr);
}

}  // namespace etld
