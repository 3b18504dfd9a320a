/*
 * Baseline (c) of bench/run: a single message transform that gives schemaless JSON records a
 * fixed Connect schema, so that Debezium's JDBC sink can write them.
 *
 * Why it exists: the benchmark topic holds plain JSON objects (bench/tools/records.hpp), the bytes
 * every contender reads. Debezium's JDBC sink needs a Struct with a schema; JsonConverter with
 * schemas.enable=true would need a {"schema":..,"payload":..} envelope in every record (other
 * bytes on the topic), and Kafka Connect ships no transform that attaches a schema (Cast,
 * ReplaceField, ... keep a schemaless value schemaless). So JsonConverter with
 * schemas.enable=false decodes the JSON into a Map and this transform copies it into a Struct.
 *
 * Config: fields = "name:type[:schema name],..." with type int64, float64 or string (the table's
 * columns); a schema name gives a field a logical type, e.g. string:io.debezium.time.ZonedTimestamp
 * (an ISO-8601 string that Debezium's sink binds as a timestamp with time zone).
 */
package etld.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.connector.ConnectRecord;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.SchemaBuilder;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.errors.DataException;
import org.apache.kafka.connect.transforms.Transformation;

public class SchemaForJson<R extends ConnectRecord<R>> implements Transformation<R> {
    private static final ConfigDef CONFIG = new ConfigDef().define("fields", ConfigDef.Type.LIST,
            ConfigDef.Importance.HIGH, "name:type[:schema name],... with type int64, float64 or string");

    private Schema schema;
    private String[] names;
    private Schema.Type[] types;

    @Override
    public void configure(Map<String, ?> props) {
        List<?> fields = (List<?>) CONFIG.parse(props).get("fields");
        SchemaBuilder b = SchemaBuilder.struct().name("etld.bench.Record");
        List<String> n = new ArrayList<>();
        List<Schema.Type> t = new ArrayList<>();
        for (Object f : fields) {
            String[] nt = f.toString().split(":", 3);
            if (nt.length < 2)
                throw new DataException("fields: expected name:type[:schema name], got " + f);
            Schema.Type type = Schema.Type.valueOf(nt[1].trim().toUpperCase());
            SchemaBuilder field = SchemaBuilder.type(type).optional();
            if (nt.length == 3)
                field.name(nt[2].trim());
            b.field(nt[0].trim(), field.build());
            n.add(nt[0].trim());
            t.add(type);
        }
        schema = b.build();
        names = n.toArray(new String[0]);
        types = t.toArray(new Schema.Type[0]);
    }

    @Override
    public R apply(R record) {
        if (!(record.value() instanceof Map))
            throw new DataException("expected a JSON object (JsonConverter, schemas.enable=false), got "
                    + (record.value() == null ? "null" : record.value().getClass().getName()));
        Map<?, ?> m = (Map<?, ?>) record.value();
        Struct s = new Struct(schema);
        for (int i = 0; i < names.length; ++i) {
            Object v = m.get(names[i]);
            if (v == null)
                continue;
            switch (types[i]) {
                case INT64: s.put(names[i], ((Number) v).longValue()); break;
                case FLOAT64: s.put(names[i], ((Number) v).doubleValue()); break;
                default: s.put(names[i], v.toString());
            }
        }
        return record.newRecord(record.topic(), record.kafkaPartition(), record.keySchema(), record.key(), schema, s,
                record.timestamp());
    }

    @Override
    public ConfigDef config() {
        return CONFIG;
    }

    @Override
    public void close() {
    }
}
