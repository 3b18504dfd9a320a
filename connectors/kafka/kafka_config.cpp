// Reading the kafka source's options into KafkaSettings, and the option table. The librdkafka
// configuration is assembled here, ours first and the user's `librdkafka:` map after it, except
// for the properties the stage owns (reserved_properties).
#include "connectors/kafka/kafka_config.hpp"

#include <algorithm>
#include <map>
#include <regex>
#include <string>

#include <librdkafka/rdkafka.h>
#include <yaml-cpp/yaml.h>

#include "config/schema/diagnostics.hpp"
#include "config/schema/secrets.hpp"
#include "connectors/kafka/kafka_handles.hpp"

namespace etld::kafka {

namespace {

// Properties the stage owns: setting them in `librdkafka:` would break its guarantees.
const std::map<std::string, std::string>& reserved_properties() {
  static const std::map<std::string, std::string> reserved{
      {"group.id", "set the stage's `group` option instead"},
      {"bootstrap.servers", "set the stage's `brokers` option instead"},
      {"metadata.broker.list", "set the stage's `brokers` option instead"},
      {"enable.auto.commit", "the source commits only settled offsets itself; remove it"},
      {"enable.auto.offset.store", "the source commits only settled offsets itself; remove it"},
      {"auto.commit.enable", "the source commits only settled offsets itself; remove it"},
      {"log.queue", "the source serves librdkafka's logs on its own strand; remove it"},
      {"enable.partition.eof", "the source sets it itself for stop_at_end; remove it"},
  };
  return reserved;
}

void check_property(rd_kafka_conf_t* conf, const std::string& key, const std::string& value,
                    const YAML::Mark& mark) {
  char err[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
    throw ConfigError(
        mark,
        "librdkafka property '" + key +
            "': " + (is_secret_setting(key) ? std::string("librdkafka rejects its value") : std::string(err)),
        "see librdkafka's CONFIGURATION.md for the consumer properties");
}

// format, key_format and the schema registry they need.
void read_formats(KafkaSettings& s, const Options& o) {
  s.avro_values = o.get_string("format") == "avro";
  s.avro_keys = o.get_string("key_format") == "avro";
  if (!s.avro_values && !s.avro_keys) {
    if (o.has("schema_registry"))
      throw ConfigError(o.mark("schema_registry"),
                        "schema_registry is set, but neither format nor key_format is avro",
                        "set format: avro (or key_format: avro), or remove schema_registry");
    return;
  }
  const YAML::Mark at = o.mark(s.avro_values ? "format" : "key_format");
#ifdef ETLD_WITH_AVRO
  if (!o.has("schema_registry"))
    throw ConfigError(at,
                      std::string(s.avro_values ? "format" : "key_format") + ": avro needs schema_registry",
                      "add schema_registry: {url: http://127.0.0.1:8081} (docs/formats.md)");
  s.registry = avro::read_registry_settings(o.node("schema_registry"), o.mark("schema_registry"));
#else
  throw ConfigError(at, "this etld is built without Avro (ETLD_WITH_AVRO=OFF)", "use format: json");
#endif
}

}  // namespace

KafkaSettings read_kafka_settings(const StageConfig& cfg, const PipelineConfig& pipeline) {
  const Options& o = cfg.options;
  KafkaSettings s;
  s.stage = cfg.name;
  s.pipeline = pipeline.name;
  s.on_poison = pipeline.on_poison;

  auto brokers = o.get_string("brokers");
  if (brokers.empty())
    throw ConfigError(o.mark("brokers"), "brokers is empty", "e.g. brokers: ${KAFKA_BROKERS}");
  s.group = o.get_string("group");
  if (s.group.empty()) throw ConfigError(o.mark("group"), "group is empty", "name the consumer group");

  bool has_topics = o.has("topics"), has_pattern = o.has("topic_pattern");
  if (has_topics == has_pattern)
    throw ConfigError(has_pattern ? o.mark("topic_pattern") : cfg.mark,
                      has_topics ? "set either topics or topic_pattern, not both"
                                 : "the kafka source needs topics or topic_pattern",
                      has_topics ? "Please delete one." : "e.g. topics: [orders]");
  if (has_topics) {
    s.topics = o.get_string_list("topics");
    if (s.topics.empty()) throw ConfigError(o.mark("topics"), "topics is empty", "name at least one topic");
    for (const auto& t : s.topics)
      if (t.empty() || t.starts_with("^"))
        throw ConfigError(o.mark("topics"), "topic name '" + t + "' is empty or a pattern",
                          "use topic_pattern for a regular expression");
  } else {
    auto pattern = o.get_string("topic_pattern");
    if (pattern.empty()) throw ConfigError(o.mark("topic_pattern"), "topic_pattern is empty");
    if (!pattern.starts_with("^")) pattern = "^" + pattern;
    try {
      std::regex re(pattern.substr(1), std::regex::extended);
    } catch (const std::regex_error& e) {
      throw ConfigError(o.mark("topic_pattern"),
                        "topic_pattern is not a valid regular expression: " + std::string(e.what()));
    }
    s.topics = {pattern};
  }

  auto max_in_flight = o.get_int("max_in_flight_per_partition");
  if (max_in_flight < 1)
    throw ConfigError(o.mark("max_in_flight_per_partition"),
                      "max_in_flight_per_partition must be at least 1");
  s.max_in_flight = static_cast<std::size_t>(max_in_flight);
  // A default that depends on another option (the spec's doc of stop_at_end says so): a bounded
  // input needs no cap, and a stage holding its acks to the end must not meet one.
  s.stop_at_end = o.get_bool("stop_at_end");
  if (s.stop_at_end && !o.has("max_in_flight_per_partition")) s.max_in_flight = kNoInFlightCap;
  if (o.has("start_at")) s.start_at = read_bound(o.node("start_at"), true);
  if (o.has("stop_at")) s.stop_at = read_bound(o.node("stop_at"), false);
  if (s.start_at && !s.stop_at)
    throw ConfigError(o.mark("start_at"),
                      "start_at needs stop_at: a bounded read rewinds on every assignment",
                      "add stop_at: end (the end seen at start), a time or offsets");
  if (s.stop_at && s.stop_at_end)
    throw ConfigError(o.mark("stop_at_end"), "set either stop_at_end or stop_at, not both",
                      "stop_at: end stops at the end seen at start; stop_at_end at the end whenever reached");
  s.commit_interval = o.get_duration("commit_interval");
  if (s.commit_interval.count() <= 0)
    throw ConfigError(o.mark("commit_interval"), "commit_interval must be positive");
  s.revoke_timeout = o.get_duration("revoke_timeout");
  if (s.revoke_timeout.count() < 0)
    throw ConfigError(o.mark("revoke_timeout"), "revoke_timeout must not be negative");
  auto prefetch_kb = o.get_int("prefetch_kbytes");
  if (prefetch_kb < 64 || prefetch_kb > 2097151)
    throw ConfigError(o.mark("prefetch_kbytes"), "prefetch_kbytes must be between 64 and 2097151");
  s.prefetch_bytes = static_cast<std::size_t>(prefetch_kb) * 1024;
  auto start_from = o.get_string("start_from");
  read_formats(s, o);

  // Ours first; the user's map may override any of them but the reserved few.
  std::int64_t partition_fetch =
      std::min<std::int64_t>(1 << 20, std::max<std::int64_t>(64 * 1024, prefetch_kb * 1024 / 4));
  s.properties = {
      {"bootstrap.servers", brokers},
      {"group.id", s.group},
      {"client.id", "etld-" + pipeline.name + "-" + cfg.name},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", start_from},
      {"partition.assignment.strategy", "cooperative-sticky"},
      {"queued.max.messages.kbytes", std::to_string(prefetch_kb)},
      {"max.partition.fetch.bytes", std::to_string(partition_fetch)},
      {"fetch.queue.backoff.ms", "50"},
      // A partition resumed after a pause joins the broker's next fetch request; with the default
      // 500 ms long poll, that request waits whenever the other partitions have nothing new, so
      // every resume could stall its partition half a second (the tail of a backlog drained in
      // 1.3 s instead of 0.4 s). Idle, this costs 20 fetch requests per second and broker.
      {"fetch.wait.max.ms", "50"},
      {"statistics.interval.ms", "5000"},  // consumer lag for the metrics
  };
  if (s.stop_at_end || s.stop_at) s.properties.emplace_back("enable.partition.eof", "true");
  ConfHandle conf(rd_kafka_conf_new());
  for (const auto& [k, v] : s.properties) check_property(conf.get(), k, v, o.mark("brokers"));
  auto user = o.get_string_map("librdkafka");
  YAML::Node user_node = o.node("librdkafka");
  for (const auto& [k, v] : user) {
    YAML::Mark mark = o.mark("librdkafka");
    if (user_node.IsMap())
      for (const auto& kv : user_node)
        if (kv.first.as<std::string>("") == k) mark = kv.first.Mark();
    if (auto it = reserved_properties().find(k); it != reserved_properties().end())
      throw ConfigError(mark, "librdkafka property '" + k + "' is set by the kafka source itself",
                        it->second);
    check_property(conf.get(), k, v, mark);
    if (k == "group.instance.id") {  // set per instance by create_consumer
      s.member_id = v;
      s.member_id_off = v.empty();
    } else {
      s.properties.emplace_back(k, v);
    }
    if (!s.overrides_text.empty()) s.overrides_text += ", ";
    s.overrides_text += k + "=" + (is_secret_setting(k) ? std::string("***") : v);
  }
  // The group's rebalance timeout is max.poll.interval.ms: a revoke that drains longer than that
  // gets this member thrown out of the group, and its partitions replayed elsewhere.
  std::int64_t rebalance_timeout_ms = 300000;
  for (const auto& [k, v] : s.properties)
    if (k == "max.poll.interval.ms") rebalance_timeout_ms = std::stoll(v);
  if (s.revoke_timeout.count() >= rebalance_timeout_ms)
    throw ConfigError(
        o.mark("revoke_timeout"),
        "revoke_timeout (" + std::to_string(s.revoke_timeout.count()) +
            " ms) must be shorter than the group's rebalance timeout, max.poll.interval.ms (" +
            std::to_string(rebalance_timeout_ms) + " ms)",
        "lower revoke_timeout (and max_in_flight_per_partition, which bounds what a revoke drains)");
  return s;
}

std::vector<OptionSpec> kafka_source_options() {
  return {
      {"brokers",
       OptionKind::string,
       "Bootstrap brokers, host:port[,host:port...], e.g. ${KAFKA_BROKERS}.",
       true,
       "",
       {}},
      {"group", OptionKind::string, "Consumer group id; offsets are committed for it.", true, "", {}},
      {"topics", OptionKind::string_list, "Topics to consume (this or topic_pattern).", false, "", {}},
      {"topic_pattern",
       OptionKind::string,
       "Regular expression (POSIX extended) of topics to consume, matched against whole names; "
       "new matching topics are picked up (this or topics).",
       false,
       "",
       {}},
      {"start_from",
       OptionKind::choice,
       "Where a group without committed offsets starts: earliest or latest (auto.offset.reset).",
       false,
       "earliest",
       {"earliest", "latest"}},
      {"librdkafka",
       OptionKind::string_map,
       "Extra librdkafka consumer properties (SASL, TLS, tuning), passed through as they are; values of "
       "properties named like password, secret or key are never logged.",
       false,
       "",
       {}},
      {"format",
       OptionKind::choice,
       "What the values are: json (JSON text, parsed where a stage needs it) or avro (the Confluent wire "
       "format: magic byte 0, a 4-byte schema id, the Avro binary body, decoded with the schema from "
       "schema_registry; docs/formats.md).",
       false,
       "json",
       {"json", "avro"}},
      {"key_format",
       OptionKind::choice,
       "What the keys are: raw (their bytes, as they came) or avro (the Confluent wire format, as format: "
       "avro; the key is replaced by the decoded key's JSON text).",
       false,
       "raw",
       {"raw", "avro"}},
      {"schema_registry",
       OptionKind::mapping,
       "Required when format or key_format is avro: the Confluent-compatible schema registry schemas are "
       "fetched from by id (GET {url}/schemas/ids/{id}), once each: {url, username, password, ca_file "
       "(TLS trust for https), timeout (per request, default 10s)}; the password is never logged.",
       false,
       "",
       {}},
      {"max_in_flight_per_partition",
       OptionKind::integer,
       "Most events of one partition emitted and not yet committable; the partition pauses at this cap.",
       false,
       "10000",
       {}},
      {"stop_at_end",
       OptionKind::boolean,
       "Finish once every assigned partition is read to its end (a bounded input, as reduce needs), "
       "committing as the rest settles; max_in_flight_per_partition then caps nothing unless set.",
       false,
       "false",
       {}},
      {"start_at",
       OptionKind::any,
       "A bounded read (replays, backfills; needs stop_at): where every assigned partition starts, whatever "
       "the group committed: an RFC 3339 time (the first record at or after it, by the broker's "
       "offsets-for-times), earliest, or {TOPIC: {PARTITION: OFFSET}} (others: earliest).",
       false,
       "",
       {}},
      {"stop_at",
       OptionKind::any,
       "Where each partition's read ends, exclusive, after which the source finishes: end (the high "
       "watermark seen at assignment), an RFC 3339 time (before the first record at or after it), or "
       "{TOPIC: {PARTITION: OFFSET}} (others: end).",
       false,
       "",
       {}},
      {"commit_interval",
       OptionKind::duration,
       "How often settled offsets are committed (asynchronously).",
       false,
       "1s",
       {}},
      {"prefetch_kbytes",
       OptionKind::integer,
       "Bound on librdkafka's prefetch queue in KiB (queued.max.messages.kbytes); also sizes fetch "
       "requests.",
       false,
       "16384",
       {}},
      {"revoke_timeout",
       OptionKind::duration,
       "On a rebalance, how long to wait for the revoked partitions' in-flight events to settle before "
       "committing what is settled and giving them up.",
       false,
       "10s",
       {}},
  };
}

}  // namespace etld::kafka
