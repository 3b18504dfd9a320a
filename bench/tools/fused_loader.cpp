// fused_loader: the hand-written limit of bench/run's e2e scenarios (docs/performance.md, "The
// fused loader"). The whole job with no engine, as a skilled engineer would write it for this one
// job: librdkafka consume with the kafka source's default settings, simdjson on-demand, COPY text
// of the benchmark's columns (bench/run's Bench.columns) with the checks a careful loader makes,
// batches of the sink's size, one COPY per batch (or, for upserts, etld's staging table and
// INSERT ... ON CONFLICT statement, one transaction), and the batch's Kafka offsets committed
// after its transaction commits.
//   fused_loader BROKERS TOPIC GROUP DSN TABLE COUNT narrow|wide insert|upsert MAX_ROWS MAX_WAIT_MS
// Stops once COUNT records are in PostgreSQL. Output: one JSON line on stdout (rows, seconds,
// rows_per_s, cpu_s: user + system CPU of the process, all threads, when the last batch had
// committed, the kernel's counters that bench/run reads from /proc/<pid>/stat for etld).
// Errors (a record that does not fit its column included, with its topic/partition/offset): a
// message on stderr and exit status 1; nothing is skipped.
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <simdjson.h>
#include <sys/resource.h>

#include <array>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
namespace od = simdjson::ondemand;

// ---------------------------------------------------------------------------- columns and rows

enum class Kind { bigint, numeric, text, timestamptz };
struct Column {
  std::string name;
  Kind kind;
};

// The columns of bench/run's tables (Bench.columns), in the same order.
std::vector<Column> bench_columns(bool wide) {
  std::vector<Column> cols = {
      {"id", Kind::bigint},   {"customer", Kind::text},          {"amount", Kind::numeric},
      {"status", Kind::text}, {"created_at", Kind::timestamptz}, {"note", Kind::text}};
  if (wide)
    for (int f = 0; f < 14; ++f) {
      char name[8];
      std::snprintf(name, sizeof name, "f%02d", f);
      cols.push_back({name, Kind::text});
    }
  return cols;
}

std::string quote_ident(const std::string& name) {
  std::string out = "\"";
  for (char ch : name) {
    if (ch == '"') out.push_back('"');
    out.push_back(ch);
  }
  return out + "\"";
}

// A COPY text field: backslash, tab, newline and carriage return escaped; NUL refused (PostgreSQL
// text cannot hold it). One table look-up per byte; runs of plain bytes copied at once.
constexpr std::array<char, 256> kCopyEscape = [] {
  std::array<char, 256> t{};
  t['\\'] = '\\', t['\t'] = 't', t['\n'] = 'n', t['\r'] = 'r', t[0] = '0';
  return t;
}();

bool append_copy_text(std::string& out, std::string_view s) {
  std::size_t run = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char esc = kCopyEscape[static_cast<unsigned char>(s[i])];
    if (esc == 0) continue;
    if (esc == '0') return false;
    out.append(s.data() + run, i - run);
    const char pair[2] = {'\\', esc};
    out.append(pair, 2);
    run = i + 1;
  }
  out.append(s.data() + run, s.size() - run);
  return true;
}

// A JSON number token: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; PostgreSQL's numeric input
// takes all of them, digits as written.
bool is_json_number(std::string_view s) {
  std::size_t i = 0, n = s.size();
  auto digits = [&] {
    std::size_t from = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
    return i > from;
  };
  if (i < n && s[i] == '-') ++i;
  if (i < n && s[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < n && s[i] == '.' && (++i, !digits())) return false;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == n;
}

// An ISO 8601 timestamp as PostgreSQL reads it: YYYY-MM-DD[T ]HH:MM:SS then fraction and zone
// characters only. Catches what would fail the whole COPY, without a calendar.
bool is_timestamp(std::string_view s) {
  static constexpr std::string_view shape = "dddd-dd-ddTdd:dd:dd";
  if (s.size() < shape.size()) return false;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const char c = s[i];
    const bool ok = shape[i] == 'd'   ? c >= '0' && c <= '9'
                    : shape[i] == 'T' ? c == 'T' || c == ' '
                                      : c == shape[i];
    if (!ok) return false;
  }
  for (char c : s.substr(shape.size()))
    if (!((c >= '0' && c <= '9') || c == '.' || c == ':' || c == '+' || c == '-' || c == 'Z')) return false;
  return true;
}

std::string_view trim_right(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// One JSON record into one COPY row, through per-column cells (fields may come in any order).
class RowEncoder {
 public:
  explicit RowEncoder(std::vector<Column> cols)
      : cols_(std::move(cols)), cells_(cols_.size()), set_(cols_.size()) {}

  // Appends the row (with `prefix` first, and '\n') to `out`; on a bad record leaves `out` as it
  // was and returns the reason.
  std::string encode(const char* data, std::size_t len, std::string_view prefix, std::string& out) {
    const std::size_t mark = out.size();
    std::string why = encode_row(data, len, prefix, out);
    if (!why.empty()) out.resize(mark);
    return why;
  }

 private:
  // Fields in the columns' order (the usual case) go straight onto `out`; from the first one out
  // of order on, into per-column cells, joined at the end. A field named twice is refused: which
  // one a reader keeps is not defined (RFC 8259).
  std::string encode_row(const char* data, std::size_t len, std::string_view prefix, std::string& out) {
    padded_.assign(data, len);
    padded_.resize(len + simdjson::SIMDJSON_PADDING);
    od::document doc;
    if (auto err = parser_.iterate(padded_.data(), len, padded_.size()).get(doc))
      return simdjson::error_message(err);
    od::object obj;
    if (auto err = doc.get_object().get(obj))
      return std::string("not a JSON object: ") + simdjson::error_message(err);
    std::fill(set_.begin(), set_.end(), false);
    out.append(prefix);
    std::size_t direct = 0;  // columns 0..direct-1 are on `out` already
    bool in_order = true;
    for (auto f : obj) {
      od::field field;
      if (auto err = std::move(f).get(field)) return simdjson::error_message(err);
      const std::size_t c = find(field, direct);
      if (c == cols_.size()) continue;  // a field no column reads
      if (set_[c]) return "field " + cols_[c].name + " appears twice";
      set_[c] = true;
      in_order = in_order && c == direct;
      std::string* to = &out;
      if (in_order) {
        if (c > 0) out.push_back('\t');
        ++direct;
      } else {
        to = &cells_[c];
        to->clear();
      }
      if (std::string why = encode_value(field.value(), cols_[c].kind, *to); !why.empty())
        return "column " + cols_[c].name + ": " + why;
    }
    // The On Demand parser stops where the object ends: a location after it is trailing content.
    const char* rest = nullptr;
    if (!doc.current_location().get(rest)) return "trailing content after the JSON object";
    for (std::size_t c = direct; c < cols_.size(); ++c) {
      if (c > 0) out.push_back('\t');
      if (set_[c]) {
        out.append(cells_[c]);
      } else {
        out.append("\\N");
      }
    }
    out.push_back('\n');
    return {};
  }

  std::size_t find(od::field& field, std::size_t hint) {
    od::raw_json_string key = field.key();
    for (std::size_t k = 0; k < cols_.size(); ++k) {
      std::size_t c = (hint + k) % cols_.size();
      if (key.unsafe_is_equal(cols_[c].name)) return c;
    }
    // An escaped key ("\u0069d") is a column's name only once unescaped.
    const char* raw = key.raw();
    bool escaped = false;
    for (const char* p = raw; *p != '"'; ++p)
      if (*p == '\\') {
        escaped = true;
        break;
      }
    std::string_view name;
    if (escaped && !field.unescaped_key().get(name))
      for (std::size_t c = 0; c < cols_.size(); ++c)
        if (name == cols_[c].name) return c;
    return cols_.size();
  }

  // The value's COPY text into `out` ("\N" for null); the reason when it does not fit.
  static std::string encode_value(od::value& v, Kind kind, std::string& out) {
    od::json_type type;
    if (auto err = v.type().get(type)) return simdjson::error_message(err);
    if (type == od::json_type::null) {
      bool null = false;
      if (v.is_null().get(null) || !null) return "invalid literal";
      out.append("\\N");
      return {};
    }
    switch (kind) {
      case Kind::bigint: {
        std::int64_t n = 0;
        if (auto err = v.get_int64().get(n))  // NUMBER_OUT_OF_RANGE beyond bigint, INCORRECT_TYPE for 1.5
          return std::string("not a bigint: ") + simdjson::error_message(err);
        char buf[24];
        out.append(buf, std::to_chars(buf, buf + sizeof buf, n).ptr);
        return {};
      }
      case Kind::numeric: {
        std::string_view digits;
        if (type == od::json_type::number) {
          digits = v.raw_json_token();
        } else if (type != od::json_type::string || v.get_string().get(digits)) {
          return "not a number";
        }
        digits = trim_right(digits);
        if (!is_json_number(digits)) return "not a number: " + std::string(digits.substr(0, 40));
        out.append(digits);  // every digit as written
        return {};
      }
      case Kind::timestamptz: {
        std::string_view s;
        if (type != od::json_type::string || v.get_string().get(s)) return "expected an ISO 8601 string";
        if (!is_timestamp(s)) return "not an ISO 8601 timestamp: " + std::string(s.substr(0, 40));
        out.append(s);
        return {};
      }
      case Kind::text: {
        std::string_view s;
        if (type == od::json_type::string) {
          if (auto err = v.get_string().get(s)) return simdjson::error_message(err);
        } else if (type == od::json_type::number) {
          s = trim_right(v.raw_json_token());
          if (!is_json_number(s)) return "invalid number";
        } else if (type == od::json_type::boolean) {
          bool b = false;
          if (v.get_bool().get(b)) return "invalid literal";
          s = b ? "true" : "false";
        } else {
          return "expected a string, got an object or array";
        }
        if (!append_copy_text(out, s)) return "holds a NUL character, which PostgreSQL text cannot store";
        return {};
      }
    }
    return "unknown column type";
  }

  std::vector<Column> cols_;
  std::vector<std::string> cells_;
  std::vector<bool> set_;
  std::string padded_;
  od::parser parser_;
};

// ---------------------------------------------------------------------------- PostgreSQL

struct PgSql {
  std::string copy;         // the COPY of one batch
  std::string before_copy;  // run before the first batch
  std::string after_copy;   // run after each COPY, in the same transaction (upsert)
  bool staged = false;      // rows carry the staging columns "seq<TAB>f<TAB>"
};

// The statements etld's postgres sink derives (connectors/postgres/pg_sql.cpp) for this table, its
// columns and mode: insert is a lone COPY (a transaction of its own), upsert is "BEGIN; COPY" into
// the staging table, then the INSERT ... ON CONFLICT and COMMIT, sent in one round trip.
PgSql derive_sql(const std::string& table, const std::vector<Column>& cols, bool upsert) {
  std::string list, updates;
  for (const auto& c : cols) {
    const std::string q = quote_ident(c.name);
    list += (list.empty() ? "" : ", ") + q;
    if (c.name != "id") updates += (updates.empty() ? "" : ", ") + q + " = EXCLUDED." + q;
  }
  const std::string t = quote_ident(table), stage = "fused_stage";
  PgSql sql;
  if (!upsert) {
    sql.copy = "COPY " + t + " (" + list + ") FROM STDIN";
    return sql;
  }
  sql.staged = true;
  sql.before_copy = "CREATE TEMP TABLE IF NOT EXISTS " + stage +
                    " ON COMMIT DELETE ROWS AS SELECT 0::bigint AS _etld_seq, false AS _etld_del, " + list +
                    " FROM " + t + " WITH NO DATA";
  sql.copy = "BEGIN; COPY pg_temp." + stage + " (_etld_seq, _etld_del, " + list + ") FROM STDIN";
  sql.after_copy =
      "INSERT INTO " + t + " AS t (" + list + ") SELECT " + list +
      " FROM (SELECT DISTINCT ON (\"id\") * FROM pg_temp." + stage +
      " s WHERE NOT _etld_del ORDER BY \"id\", _etld_seq DESC) x ON CONFLICT (\"id\") DO UPDATE SET " +
      updates + "; COMMIT";
  return sql;
}

class Pg {
 public:
  Pg(const std::string& dsn, PgSql sql) : sql_(std::move(sql)), c_(PQconnectdb(dsn.c_str())) {
    // The message of a failed connection can quote the DSN's host, never its password.
    if (PQstatus(c_) != CONNECTION_OK)
      throw std::runtime_error(std::string("connect: ") + PQerrorMessage(c_));
    if (!sql_.before_copy.empty()) exec(sql_.before_copy, PGRES_COMMAND_OK);
  }
  ~Pg() { PQfinish(c_); }
  Pg(const Pg&) = delete;
  Pg& operator=(const Pg&) = delete;

  void write(const std::string& rows) {
    exec(sql_.copy, PGRES_COPY_IN);
    if (PQputCopyData(c_, rows.data(), static_cast<int>(rows.size())) != 1 || PQputCopyEnd(c_, nullptr) != 1)
      throw std::runtime_error(std::string("COPY: ") + PQerrorMessage(c_));
    PGresult* r = PQgetResult(c_);
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    std::string msg = ok ? "" : PQresultErrorMessage(r);
    PQclear(r);
    while ((r = PQgetResult(c_))) PQclear(r);
    if (!ok) throw std::runtime_error("COPY: " + msg);
    if (!sql_.after_copy.empty()) exec(sql_.after_copy, PGRES_COMMAND_OK);
  }

 private:
  void exec(const std::string& sql, ExecStatusType want) {
    PGresult* r = PQexec(c_, sql.c_str());
    const bool ok = PQresultStatus(r) == want;
    std::string msg = ok ? "" : PQresultErrorMessage(r);
    PQclear(r);
    if (!ok) throw std::runtime_error(sql.substr(0, 80) + ": " + msg);
  }

  PgSql sql_;
  PGconn* c_;
};

// ---------------------------------------------------------------------------- Kafka

void set(rd_kafka_conf_t* conf, const char* name, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, name, value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
    throw std::runtime_error(std::string(name) + "=" + value + ": " + err);
}

// An asynchronous commit's result (served on the consumer queue): a failure only widens the
// replay after a crash, as with etld's interval commits, but it is said.
void on_commit(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t*, void*) {
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
    std::fprintf(stderr, "fused_loader: offset commit failed: %s\n", rd_kafka_err2str(err));
}

// The kafka source's librdkafka settings at its defaults (connectors/kafka/kafka_config.cpp:
// prefetch_kbytes 16384), less statistics.interval.ms, which only feeds etld's metrics.
rd_kafka_t* make_consumer(const std::string& brokers, const std::string& group) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  set(conf, "bootstrap.servers", brokers);
  set(conf, "group.id", group);
  set(conf, "client.id", "fused_loader");
  set(conf, "enable.auto.commit", "false");
  set(conf, "enable.auto.offset.store", "false");
  set(conf, "auto.offset.reset", "earliest");
  set(conf, "partition.assignment.strategy", "cooperative-sticky");
  set(conf, "queued.max.messages.kbytes", "16384");
  set(conf, "max.partition.fetch.bytes", std::to_string(1 << 20));
  set(conf, "fetch.queue.backoff.ms", "50");
  set(conf, "fetch.wait.max.ms", "50");
  rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk) throw std::runtime_error(std::string("rd_kafka_new: ") + err);
  rd_kafka_poll_set_consumer(rk);
  return rk;
}

// ---------------------------------------------------------------------------- the loop

// A batch: its COPY text and, per partition, the offset after its last record.
struct Batch {
  std::string rows;
  std::size_t count = 0;
  std::vector<std::int64_t> next_offset;  // by partition; -1: none in this batch
  Clock::time_point first;
};

// The writer thread: one batch written while the loop builds the next, as etld's sink writes
// while its source reads; a single slot, so at most two batches are in memory.
class Writer {
 public:
  Writer(const std::string& dsn, PgSql sql, rd_kafka_t* rk, std::string topic)
      : pg_(dsn, std::move(sql)), rk_(rk), topic_(std::move(topic)), thread_([this] { run(); }) {}
  ~Writer() {
    {
      std::lock_guard lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Hands `b` over (waiting for the slot); `b` comes back empty for the next batch.
  void submit(Batch& b) {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return !full_ || !error_.empty(); });
    check(lock);
    std::swap(slot_, b);
    full_ = true;
    cv_.notify_all();
  }
  // Waits until every submitted batch is written; returns the rows written.
  std::size_t drain() {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return !full_ || !error_.empty(); });
    check(lock);
    return written_;
  }
  const std::vector<std::int64_t>& committed() const { return committed_; }

 private:
  void check(std::unique_lock<std::mutex>&) {
    if (!error_.empty()) throw std::runtime_error("PostgreSQL: " + error_);
  }
  void run() {
    std::unique_lock lock(m_);
    while (true) {
      cv_.wait(lock, [&] { return full_ || stop_; });
      if (!full_) return;
      lock.unlock();
      std::string error;
      try {
        pg_.write(slot_.rows);
        commit_offsets(slot_.next_offset);
      } catch (const std::exception& e) {
        error = e.what();
      }
      lock.lock();
      if (!error.empty()) error_ = error;
      written_ += slot_.count;
      slot_.rows.clear();
      slot_.count = 0;
      full_ = false;
      cv_.notify_all();
      if (!error_.empty()) return;
    }
  }
  // Asynchronous: commits are sent in order on the group coordinator's connection, so a later one
  // never goes back behind an earlier one, and a synchronous commit would add a broker round trip
  // to every batch; the program's last commit (in main) is synchronous.
  void commit_offsets(std::vector<std::int64_t>& next) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(next.size()));
    for (std::size_t p = 0; p < next.size(); ++p) {
      if (next[p] < 0) continue;
      rd_kafka_topic_partition_list_add(list, topic_.c_str(), static_cast<int32_t>(p))->offset = next[p];
      if (committed_.size() <= p) committed_.resize(p + 1, -1);
      committed_[p] = next[p];
      next[p] = -1;
    }
    if (list->cnt > 0) rd_kafka_commit(rk_, list, 1);
    rd_kafka_topic_partition_list_destroy(list);
  }

  Pg pg_;
  rd_kafka_t* rk_;
  std::string topic_;
  std::mutex m_;
  std::condition_variable cv_;
  Batch slot_;
  bool full_ = false, stop_ = false;
  std::size_t written_ = 0;
  std::string error_;
  std::vector<std::int64_t> committed_;  // the writer's thread only, read after drain()
  std::thread thread_;
};

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int run(int argc, char** argv) {
  if (argc != 11)
    throw std::runtime_error(
        "usage: fused_loader BROKERS TOPIC GROUP DSN TABLE COUNT narrow|wide insert|upsert MAX_ROWS "
        "MAX_WAIT_MS");
  const std::string brokers = argv[1], topic = argv[2], group = argv[3], dsn = argv[4], table = argv[5];
  const std::size_t count = std::strtoull(argv[6], nullptr, 10);
  const bool wide = std::string_view(argv[7]) == "wide", upsert = std::string_view(argv[8]) == "upsert";
  const std::size_t max_rows = std::strtoull(argv[9], nullptr, 10);
  const auto max_wait = std::chrono::milliseconds(std::atoll(argv[10]));
  if (max_rows == 0) throw std::runtime_error("MAX_ROWS must be positive");

  const auto t0 = Clock::now();
  const auto cols = bench_columns(wide);
  rd_kafka_t* rk = make_consumer(brokers, group);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (err) throw std::runtime_error(std::string("subscribe: ") + rd_kafka_err2str(err));
  rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(rk);

  RowEncoder encoder(cols);
  PgSql sql = derive_sql(table, cols, upsert);
  const bool staged = sql.staged;
  std::size_t consumed = 0, written = 0;
  double cpu = 0, seconds = 0;
  std::vector<std::int64_t> committed;
  {
    Writer writer(dsn, std::move(sql), rk, topic);
    Batch batch;
    std::vector<rd_kafka_message_t*> msgs(max_rows);
    std::string prefix;
    while (consumed < count) {
      const auto now = Clock::now();
      auto wait = std::chrono::milliseconds(100);
      if (batch.count > 0)
        wait = std::max(std::chrono::milliseconds(0),
                        std::chrono::duration_cast<std::chrono::milliseconds>(batch.first + max_wait - now));
      const std::size_t want = std::min(max_rows - batch.count, count - consumed);
      const ssize_t n =
          rd_kafka_consume_batch_queue(queue, static_cast<int>(wait.count()), msgs.data(), want);
      if (n < 0) throw std::runtime_error(std::string("consume: ") + rd_kafka_err2str(rd_kafka_last_error()));
      for (ssize_t i = 0; i < n; ++i) {
        rd_kafka_message_t* m = msgs[static_cast<std::size_t>(i)];
        if (m->err) {  // the consumer's errors are mostly transient (librdkafka retries): said, not fatal
          if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            std::fprintf(stderr, "fused_loader: consume: %s\n", rd_kafka_message_errstr(m));
          rd_kafka_message_destroy(m);
          continue;
        }
        if (batch.count == 0) batch.first = Clock::now();
        if (staged) {
          prefix.clear();
          char buf[24];
          prefix.append(buf, std::to_chars(buf, buf + sizeof buf, batch.count).ptr);
          prefix.append("\tf\t");
        }
        std::string why = encoder.encode(static_cast<const char*>(m->payload), m->len, prefix, batch.rows);
        if (!why.empty()) {
          std::string where = std::string(rd_kafka_topic_name(m->rkt)) + "/" + std::to_string(m->partition) +
                              "@" + std::to_string(m->offset);
          rd_kafka_message_destroy(m);
          throw std::runtime_error("record " + where + ": " + why);
        }
        const auto p = static_cast<std::size_t>(m->partition);
        if (batch.next_offset.size() <= p) batch.next_offset.resize(p + 1, -1);
        batch.next_offset[p] = m->offset + 1;
        ++batch.count;
        ++consumed;
        rd_kafka_message_destroy(m);
      }
      if (batch.count > 0 &&
          (batch.count >= max_rows || consumed >= count || Clock::now() >= batch.first + max_wait))
        writer.submit(batch);
    }
    written = writer.drain();
    cpu = cpu_seconds();
    seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    committed = writer.committed();
  }
  // The last commit synchronously: the group's offsets are complete when the program says so.
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(committed.size()));
  for (std::size_t p = 0; p < committed.size(); ++p)
    if (committed[p] >= 0)
      rd_kafka_topic_partition_list_add(list, topic.c_str(), static_cast<int32_t>(p))->offset = committed[p];
  err = list->cnt > 0 ? rd_kafka_commit(rk, list, 0) : RD_KAFKA_RESP_ERR_NO_ERROR;
  rd_kafka_topic_partition_list_destroy(list);
  if (err) throw std::runtime_error(std::string("final offset commit: ") + rd_kafka_err2str(err));
  rd_kafka_queue_destroy(queue);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  std::printf("{\"rows\":%zu,\"seconds\":%.3f,\"rows_per_s\":%.1f,\"cpu_s\":%.3f}\n", written, seconds,
              static_cast<double>(written) / seconds, cpu);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fused_loader: %s\n", e.what());
    return 1;
  }
}
