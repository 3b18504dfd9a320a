#include "stages/engine/tap.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <string_view>

#include <simdjson.h>

namespace etld {

namespace {

// `bytes` cut to `max`: as text when the kept bytes are UTF-8 (a character cut in two is left out
// whole), else as base64.
TapText cut(std::string_view bytes, std::size_t max) {
  TapText t;
  auto part = bytes.substr(0, max);
  t.truncated = part.size() < bytes.size();
  if (simdjson::validate_utf8(part)) {
    t.text = part;
    return t;
  }
  if (t.truncated)
    for (std::size_t back = 1; back <= 3 && back <= part.size(); ++back)
      if (simdjson::validate_utf8(part.substr(0, part.size() - back))) {
        t.text = part.substr(0, part.size() - back);
        return t;
      }
  t.base64 = true;
  t.text.resize(4 * ((part.size() + 2) / 3) + 1);
  auto n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(t.text.data()),
                      reinterpret_cast<const unsigned char*>(part.data()), static_cast<int>(part.size()));
  t.text.resize(static_cast<std::size_t>(n));
  return t;
}

}  // namespace

std::size_t TapEvent::bytes() const {
  std::size_t n = sizeof(TapEvent) + stage.size() + topic.size() + rejection.size();
  if (key) n += key->text.size();
  if (value) n += value->text.size();
  for (const auto& [name, v] : headers) n += sizeof(headers[0]) + name.text.size() + v.text.size();
  return n;
}

TapEvent sample_event(const Event& event, const std::string& stage, int instance, std::size_t max_bytes) {
  TapEvent s;
  s.stage = stage;
  s.instance = instance;
  s.topic = event.topic.str();
  s.partition = event.partition;
  s.offset = event.offset;
  s.timestamp_ms = event.timestamp_ms;
  if (event.has_key) s.key = cut(event.key, max_bytes);
  if (event.has_value) {
    // What the stage made of the event: its record once parsed (a map's output), else the bytes
    // as they arrived. Serialised only for the events sampled.
    if (const auto* record = event.parsed_record())
      s.value = cut(record->to_json(), max_bytes);
    else
      s.value = cut(event.value, max_bytes);
  }
  std::size_t left = max_bytes;  // for all headers together
  for (const auto& h : event.headers) {
    if (s.headers.size() >= kTapMaxHeaders || left == 0) {
      ++s.headers_omitted;
      continue;
    }
    auto name = cut(h.name, left);
    left -= std::min(left, h.name.size());
    auto value = cut(h.value, left);
    left -= std::min(left, h.value.size());
    s.headers.emplace_back(std::move(name), std::move(value));
  }
  if (event.rejected()) s.rejection = cut(event.rejection, max_bytes).text;
  return s;
}

Tap::Tap(std::shared_ptr<TapPoint> point, std::shared_ptr<std::atomic<std::size_t>> open_taps,
         std::string stage, TapLimits limits)
    : point_(std::move(point)),
      open_taps_(std::move(open_taps)),
      stage_(std::move(stage)),
      limits_(limits),
      tokens_(std::max(1.0, limits.rate)),
      refilled_(std::chrono::steady_clock::now()) {
  point_->attach(this);
}

Tap::~Tap() {
  point_->detach(this);  // waits for an offer under way
  --*open_taps_;
}

void Tap::offer(int instance, const Batch& batch) {
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  seen_ += batch.size();
  if (sampled_ >= limits_.limit || batch.empty()) return;
  // A token bucket: `rate` a second, at most one second's worth saved up.
  tokens_ = std::min(std::max(1.0, limits_.rate),
                     tokens_ + std::chrono::duration<double>(now - refilled_).count() * limits_.rate);
  refilled_ = now;
  auto want =
      std::min({static_cast<std::size_t>(std::floor(tokens_)), limits_.limit - sampled_, batch.size()});
  for (std::size_t k = 0; k < want; ++k) {
    // Spread over the batch rather than its first events.
    auto event = sample_event(batch[k * batch.size() / want], stage_, instance, limits_.max_bytes);
    tokens_ -= 1;
    ++sampled_;
    auto size = event.bytes();
    if (buffer_.size() >= kTapBufferEvents || buffer_bytes_ + size > kTapBufferBytes) {
      ++dropped_total_;
      ++dropped_since_take_;
      continue;
    }
    buffer_bytes_ += size;
    buffer_.push_back(std::move(event));
  }
}

Tap::Taken Tap::take() {
  Taken out;
  std::lock_guard lock(mu_);
  out.events.swap(buffer_);
  buffer_bytes_ = 0;
  out.dropped = std::exchange(dropped_since_take_, 0);
  return out;
}

bool Tap::complete() const {
  std::lock_guard lock(mu_);
  return sampled_ >= limits_.limit;
}
std::uint64_t Tap::sampled() const {
  std::lock_guard lock(mu_);
  return sampled_;
}
std::uint64_t Tap::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_total_;
}
std::uint64_t Tap::seen() const {
  std::lock_guard lock(mu_);
  return seen_;
}

void TapPoint::attach(Tap* tap) {
  std::lock_guard lock(mu_);
  taps_.push_back(tap);
  active_.store(taps_.size(), std::memory_order_relaxed);
}

void TapPoint::detach(Tap* tap) {
  std::lock_guard lock(mu_);
  std::erase(taps_, tap);
  active_.store(taps_.size(), std::memory_order_relaxed);
}

void TapPoint::offer_to_taps(int instance, const Batch& batch) {
  std::lock_guard lock(mu_);
  for (auto* tap : taps_) tap->offer(instance, batch);
}

TapHub::TapHub(const std::vector<std::string>& stages) : names_(stages) {
  for (const auto& s : stages) points_.emplace(s, std::make_shared<TapPoint>());
}

std::shared_ptr<TapPoint> TapHub::point(const std::string& stage) const {
  auto it = points_.find(stage);
  return it == points_.end() ? nullptr : it->second;
}

std::shared_ptr<Tap> TapHub::open(const std::string& stage, const TapLimits& limits) {
  auto it = points_.find(stage);
  if (it == points_.end()) {
    std::string names;
    for (const auto& name : names_) names += (names.empty() ? "" : ", ") + name;
    throw TapRefused(TapRefused::Why::unknown_stage,
                     "no stage '" + stage + "' in the pipeline (its stages: " + names + ")");
  }
  auto n = open_taps_->load();
  do {
    if (n >= kMaxTaps)
      throw TapRefused(TapRefused::Why::too_many, std::to_string(n) + " taps are open (at most " +
                                                      std::to_string(kMaxTaps) +
                                                      "); try again once one has ended");
  } while (!open_taps_->compare_exchange_weak(n, n + 1));
  return std::make_shared<Tap>(it->second, open_taps_, stage, limits);
}

}  // namespace etld
