// The kafka source's default static group membership (KIP-345): a group.instance.id per consumer
// that a restarted process takes again, so that the broker hands its partitions back at once
// instead of after session.timeout.ms (45 s by default). See docs/connectors/kafka.md.
//
// The id is "<pipeline>.<stage>.<instance>.<hostname>[.<ETLD_INSTANCE>]", plus ".s<N>" for the
// N-th process on one host running the same stage: each consumer holds an exclusive lock on its
// id's file (flock, released by the kernel when the process dies) in $RUNTIME_DIRECTORY,
// $XDG_RUNTIME_DIR or /tmp, and takes the first id whose lock is free. Two live consumers never
// share an id; a killed process's successor gets the dead one's id back.
// Threading: thread-safe (the lock files arbitrate).
#pragma once

#include <string>

namespace etld::kafka {

class StaticMemberId {
 public:
  StaticMemberId() = default;
  StaticMemberId(const StaticMemberId&) = delete;
  StaticMemberId& operator=(const StaticMemberId&) = delete;
  ~StaticMemberId();

  // Takes the first free id for this consumer; "" (and no lock) if no lock file could be made,
  // in which case the consumer is a dynamic member.
  static std::string base_id(const std::string& pipeline, const std::string& stage, int instance);
  const std::string& acquire(const std::string& pipeline, const std::string& stage, int instance);
  void release();
  const std::string& id() const { return id_; }
  const std::string& problem() const { return problem_; }  // why acquire() gave "", for the log

 private:
  std::string id_, problem_;
  int fd_ = -1;
};

}  // namespace etld::kafka
