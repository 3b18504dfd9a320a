// pg_copy_baseline: the PostgreSQL sink's physical limit for bench/run. Builds the benchmark's rows
// (bench/tools/records.hpp) pre-encoded in COPY text format before the clock starts, then COPYs
// them into TABLE in transactions of BATCH rows, one connection, the way a sink must (commit per
// batch). Prints one JSON line: rows, seconds, and the server backend's pid.
//   pg_copy_baseline DSN TABLE COUNT BATCH narrow|wide
#include <libpq-fe.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/tools/records.hpp"

namespace {

void exec(PGconn* c, const char* sql, ExecStatusType want) {
  PGresult* r = PQexec(c, sql);
  bool ok = PQresultStatus(r) == want;
  std::string msg = ok ? "" : PQresultErrorMessage(r);
  PQclear(r);
  if (!ok) throw std::runtime_error(std::string("pg_copy_baseline: ") + sql + ": " + msg);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc != 6) throw std::runtime_error("usage: pg_copy_baseline DSN TABLE COUNT BATCH narrow|wide");
    const std::string table = argv[2];
    const long long count = std::atoll(argv[3]), batch = std::atoll(argv[4]);
    const bool wide = std::string(argv[5]) == "wide";
    std::vector<std::string> batches;
    for (long long i = 0; i < count; i += batch) {
      std::string buf;
      for (long long j = i; j < std::min(count, i + batch); ++j)
        etld::bench::append_copy_row(buf, etld::bench::make_record(j, wide), wide);
      batches.push_back(std::move(buf));
    }
    auto t0 = std::chrono::steady_clock::now();
    PGconn* c = PQconnectdb(argv[1]);
    if (PQstatus(c) != CONNECTION_OK)
      throw std::runtime_error(std::string("pg_copy_baseline: connect: ") + PQerrorMessage(c));
    const std::string copy = "COPY " + table + " FROM STDIN";
    for (const auto& data : batches) {
      exec(c, "BEGIN", PGRES_COMMAND_OK);
      exec(c, copy.c_str(), PGRES_COPY_IN);
      if (PQputCopyData(c, data.data(), static_cast<int>(data.size())) != 1 || PQputCopyEnd(c, nullptr) != 1)
        throw std::runtime_error(std::string("pg_copy_baseline: COPY: ") + PQerrorMessage(c));
      PGresult* r = PQgetResult(c);
      bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
      std::string msg = ok ? "" : PQresultErrorMessage(r);
      PQclear(r);
      while ((r = PQgetResult(c))) PQclear(r);
      if (!ok) throw std::runtime_error("pg_copy_baseline: COPY: " + msg);
      exec(c, "COMMIT", PGRES_COMMAND_OK);
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("{\"rows\":%lld,\"seconds\":%.3f,\"backend_pid\":%d}\n", count, s, PQbackendPID(c));
    PQfinish(c);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
