// The `etld` command line: run, validate, graph, --version, --help.
#pragma once

namespace etld {
int cli_main(int argc, char** argv);
}
