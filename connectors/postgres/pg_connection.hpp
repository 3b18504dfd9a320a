// A PostgreSQL connection (RAII over libpq's PGconn) with the few blocking operations the sink
// needs: exec, parameterised exec and COPY FROM STDIN. Errors are thrown as PgError carrying
// the SQLSTATE and whether the connection is still usable, and classified by classify().
// Threading: blocking; used only by one dedicated connection thread (or the control plane).
// cancel() alone may be called from another thread.
#pragma once

#include <libpq-fe.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace etld::pg {

// What to do about an error, by SQLSTATE class:
//   transient - connection (08), serialization/deadlock (40), resources (53), operator
//               intervention/shutdown (57), read-only transaction (25006), a lost connection:
//               reconnect, back off, retry the same rows; never dead-letter them
//   data      - data exception (22), integrity constraint violation (23): the rows are bad;
//               bisect the batch to isolate them
//   config    - anything else (42 syntax / undefined table, 3F schema, 28 auth...): the
//               configuration is wrong; stop loudly
enum class ErrorClass { transient, data, config };
ErrorClass classify(const std::string& sqlstate, bool connection_lost);
const char* error_class_name(ErrorClass c);

struct PgError : std::runtime_error {
  PgError(std::string message, std::string sqlstate, bool connection_lost)
      : std::runtime_error(std::move(message)),
        sqlstate(std::move(sqlstate)),
        connection_lost(connection_lost) {}
  std::string sqlstate;  // "" when the server sent none (client-side or connection failure)
  bool connection_lost;
  ErrorClass error_class() const { return classify(sqlstate, connection_lost); }
};

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

class PgConnection {
 public:
  // Connects (blocking); throws PgError (transient unless the server said otherwise).
  explicit PgConnection(const std::string& dsn);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  bool ok() const { return PQstatus(conn_) == CONNECTION_OK; }
  void exec(const std::string& sql);
  // Text parameters; std::nullopt is NULL. `binary` marks parameters sent as raw bytes (bytea).
  Result exec_params(const std::string& sql, const std::vector<std::optional<std::string>>& params,
                     const std::vector<bool>& binary = {});
  Result query(const std::string& sql, const std::vector<std::optional<std::string>>& params = {});
  // COPY ... FROM STDIN with `data` (rows in COPY text format, each ending in '\n').
  void copy_in(const std::string& sql, std::string_view data);
  // Asks the server to cancel the running statement. Thread-safe.
  void cancel();
  PGconn* raw() { return conn_; }

 private:
  [[noreturn]] void throw_error(const PGresult* r, const std::string& context);
  PGconn* conn_ = nullptr;
  std::mutex cancel_mu_;
  PGcancel* cancel_ = nullptr;
};

}  // namespace etld::pg
