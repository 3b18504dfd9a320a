#include "connectors/postgres/pg_connection.hpp"

namespace etld::pg {

ErrorClass classify(const std::string& sqlstate, bool connection_lost) {
  if (connection_lost) return ErrorClass::transient;
  if (sqlstate.size() != 5) return ErrorClass::transient;  // no SQLSTATE: a client/network failure
  const std::string cls = sqlstate.substr(0, 2);
  if (cls == "08" || cls == "40" || cls == "53" || cls == "57" || sqlstate == "25006" ||
      sqlstate == "55P03" || sqlstate == "58030")
    return ErrorClass::transient;
  if (cls == "22" || cls == "23") return ErrorClass::data;
  return ErrorClass::config;
}

const char* error_class_name(ErrorClass c) {
  switch (c) {
    case ErrorClass::transient: return "transient";
    case ErrorClass::data: return "data";
    case ErrorClass::config: return "config";
  }
  return "?";
}

namespace {
std::string trimmed(const char* s) {
  std::string m = s ? s : "";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}
}  // namespace

PgConnection::PgConnection(const std::string& dsn) {
  // A default connect_timeout, so that an unreachable host cannot park the connection thread (and
  // shutdown) for the kernel's TCP timeout; the DSN's own connect_timeout, if any, wins (it is
  // expanded after the default).
  const char* keywords[] = {"connect_timeout", "dbname", nullptr};
  const char* values[] = {"10", dsn.c_str(), nullptr};
  conn_ = PQconnectdbParams(keywords, values, 1);
  if (!conn_) throw PgError("cannot allocate a libpq connection", "", true);
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string msg = trimmed(PQerrorMessage(conn_));
    PQfinish(conn_);
    conn_ = nullptr;
    throw PgError("cannot connect: " + msg, "", true);
  }
  // Server NOTICEs ("relation already exists, skipping") are not errors: keep them off stderr.
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
  cancel_ = PQgetCancel(conn_);
}

PgConnection::~PgConnection() {
  {
    std::lock_guard lock(cancel_mu_);
    if (cancel_) PQfreeCancel(cancel_);
    cancel_ = nullptr;
  }
  if (conn_) PQfinish(conn_);
}

void PgConnection::cancel() {
  std::lock_guard lock(cancel_mu_);
  if (!cancel_) return;
  char err[256];
  PQcancel(cancel_, err, sizeof err);
}

void PgConnection::throw_error(const PGresult* r, const std::string& context) {
  std::string state, msg;
  if (r) {
    const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    state = s ? s : "";
    msg = trimmed(PQresultErrorMessage(r));
    const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    if (primary) {
      msg = primary;
      if (const char* detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL))
        msg += " (" + std::string(detail) + ")";
    }
  }
  if (msg.empty()) msg = trimmed(PQerrorMessage(conn_));
  if (msg.empty()) msg = "unknown error";
  bool lost = PQstatus(conn_) != CONNECTION_OK;
  throw PgError(context.empty() ? msg : context + ": " + msg, state, lost);
}

void PgConnection::exec(const std::string& sql) {
  Result r(PQexec(conn_, sql.c_str()));
  auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) throw_error(r.get(), "");
}

Result PgConnection::exec_params(const std::string& sql,
                                 const std::vector<std::optional<std::string>>& params,
                                 const std::vector<bool>& binary) {
  std::vector<const char*> values(params.size());
  std::vector<int> lengths(params.size()), formats(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    values[i] = params[i] ? params[i]->data() : nullptr;
    lengths[i] = params[i] ? static_cast<int>(params[i]->size()) : 0;
    formats[i] = i < binary.size() && binary[i] ? 1 : 0;
  }
  Result r(PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr, values.data(),
                        lengths.data(), formats.data(), 0));
  auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) throw_error(r.get(), "");
  return r;
}

Result PgConnection::query(const std::string& sql, const std::vector<std::optional<std::string>>& params) {
  return exec_params(sql, params);
}

void PgConnection::copy_in(const std::string& sql, std::string_view data) {
  Result r(PQexec(conn_, sql.c_str()));
  if (!r || PQresultStatus(r.get()) != PGRES_COPY_IN) throw_error(r.get(), "");
  r.reset();
  // Large buffers go in chunks so that libpq never needs to hold a second copy of the batch.
  constexpr std::size_t chunk = 1 << 20;
  bool failed = false;
  for (std::size_t off = 0; off < data.size() && !failed; off += chunk) {
    std::size_t n = std::min(chunk, data.size() - off);
    if (PQputCopyData(conn_, data.data() + off, static_cast<int>(n)) != 1) failed = true;
  }
  if (PQputCopyEnd(conn_, nullptr) != 1) failed = true;
  // Drain every result: the first error wins.
  Result first_error;
  while (PGresult* res = PQgetResult(conn_)) {
    Result holder(res);
    auto st = PQresultStatus(res);
    if (st == PGRES_COPY_IN) {  // the server still expects data: end it
      PQputCopyEnd(conn_, "aborted");
      continue;
    }
    if (st != PGRES_COMMAND_OK && !first_error) first_error = std::move(holder);
  }
  if (first_error) throw_error(first_error.get(), "");
  if (failed) throw PgError("COPY failed: " + trimmed(PQerrorMessage(conn_)), "", true);
}

}  // namespace etld::pg
