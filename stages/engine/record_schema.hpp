// RecordSchema: what a source knows of the shape and types of the records it decodes (an Avro
// schema from a registry), carried on each event beside its record. Opaque to the engine: the
// connectors that make it and the sinks that read it (the postgres sink's columns from the
// schema) agree on the concrete type. Immutable and shared by every event of that schema.
#pragma once

namespace etld {

class RecordSchema {
 public:
  virtual ~RecordSchema() = default;
};

}  // namespace etld
