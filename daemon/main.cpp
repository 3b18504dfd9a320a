#include "daemon/cli.hpp"

int main(int argc, char** argv) { return etld::cli_main(argc, argv); }
