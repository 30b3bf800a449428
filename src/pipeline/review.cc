#include "pipeline/review.h"

namespace sluice::pipeline {

Result<std::vector<HeldDocument>> load_held_for_review(queue::Queue& q) {
  if (!q.capabilities().offsets) {
    return Status::unsupported("`sluice review` finds held documents by their offsets, and the " +
                               std::string(q.backend()) + " backend has none; they wait on topic " +
                               kTopicReview + ": read them with `sluice tail " + kTopicReview +
                               " --group NAME --from-beginning`");
  }
  std::vector<HeldDocument> out;
  auto info = q.admin().describe_topic(kTopicReview);
  if (!info.is_ok()) {
    if (info.status().code() == Code::kNotFound) return out;  // nothing was ever held
    return info.status();
  }
  SLUICE_ASSIGN_OR_RETURN(std::vector<DeadLetter> held, load_held(q, {*info}, kTopicReviewLedger));
  out.reserve(held.size());
  for (DeadLetter& m : held) {
    HeldDocument d;
    if (auto w = decode_work(m.value); w.is_ok()) d.work = std::move(w->first);
    if (auto r = m.header(kHeaderReviewReason)) {
      d.reason = std::string(*r);
    } else if (d.work) {
      d.reason = d.work->review_reason;
    }
    d.message = std::move(m);
    out.push_back(std::move(d));
  }
  return out;
}

Result<ReplayResult> release_from_review(queue::Queue& q, std::span<const DeadLetter* const> chosen) {
  return send_held_on(q, chosen, kTopicReviewLedger);
}

}  // namespace sluice::pipeline
