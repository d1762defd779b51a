// A small std::expected stand-in (C++23 is not available on Debian 12's GCC in
// C++20 mode): errors are values inside the core, exceptions stay at the edges.
#pragma once

#include <utility>
#include <variant>

namespace aisid {

template <class E> struct Unexpected {
    E error;
};
template <class E> Unexpected<std::decay_t<E>> unexpected(E &&e) { return {std::forward<E>(e)}; }

template <class T, class E> class Expected {
public:
    Expected(T v) : v_(std::in_place_index<0>, std::move(v)) {}
    template <class G> Expected(Unexpected<G> u) : v_(std::in_place_index<1>, std::move(u.error)) {}
    bool has_value() const { return v_.index() == 0; }
    explicit operator bool() const { return has_value(); }
    T &value() { return std::get<0>(v_); }
    const T &value() const { return std::get<0>(v_); }
    T &operator*() { return value(); }
    const T &operator*() const { return value(); }
    T *operator->() { return &value(); }
    const T *operator->() const { return &value(); }
    const E &error() const { return std::get<1>(v_); }

private:
    std::variant<T, E> v_;
};

} // namespace aisid
