#pragma once
// A switch of the calling thread, raised while a scope object lives on it and restored when the
// object goes, so that scopes nest: `using FastPathOff = ThreadFlagScope<struct FastPathOffTag>;`,
// then `FastPathOff scope;` around a call and `FastPathOff::raised()` inside it.
namespace atomforge {

template <typename Tag>
class ThreadFlagScope {
 public:
  ThreadFlagScope() : previous_(raised_) { raised_ = true; }
  ~ThreadFlagScope() { raised_ = previous_; }
  ThreadFlagScope(const ThreadFlagScope&) = delete;
  ThreadFlagScope& operator=(const ThreadFlagScope&) = delete;

  static bool raised() { return raised_; }

 private:
  static inline thread_local bool raised_ = false;
  bool previous_;
};

}  // namespace atomforge
