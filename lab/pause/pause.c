/* The lab's pause image binary: sleeps until SIGTERM or SIGINT, as Kubernetes' pause does. */
#include <signal.h>
#include <unistd.h>

static void quit(int sig) {
  (void)sig;
  _exit(0);
}

int main(void) {
  signal(SIGTERM, quit);
  signal(SIGINT, quit);
  for (;;) pause();
}
